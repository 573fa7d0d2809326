#!/usr/bin/env node
// `kubectl coordinator-ha …`: kubectl runs an executable named kubectl-coordinator_ha from
// PATH for it (a dash in a plugin's command is an underscore in its file name), with the
// arguments after the plugin's name. It is the same CLI.
import "./cli.ts";

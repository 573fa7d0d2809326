// Runs the operator guide's commands as a user types them: `kubectl …`, `helm …` and
// `coordinator-ha …`, written as one line of shell words, so that the end-to-end tests and
// `npm run demo` read like the guide. Commands run asynchronously (an availability probe keeps
// running in the same process meanwhile) and their output is kept, and shown when asked.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../charts/helm.ts";

export interface CommandResult {
  line: string;
  code: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr as they came, for showing. */
  output: string;
  ms: number;
}

/** Where a command and its output are shown: the demo streams them, tests log them. */
export interface Echo {
  command(line: string): void;
  output(chunk: string): void;
  done?(result: CommandResult): void;
}

export interface ShellOptions {
  /** The executables behind the command names: kubectl, helm, coordinator-ha. */
  programs: Record<string, string[]>;
  /** Added to this process's environment (KUBECONFIG, say). */
  env: Record<string, string>;
  echo?: Echo;
}

export interface RunOptions {
  /** Throw when the command fails (default true). */
  check?: boolean;
  input?: string;
  /** The working directory, if not the repository's (where the charts are). */
  cwd?: string;
  /** Do not echo this command, even when the shell echoes. */
  quiet?: boolean;
  timeoutMs?: number;
}

/** The built CLI, as the image runs it: `coordinator-ha` is `node dist/cli.js`. */
export const CLI = [process.execPath, join(REPO_ROOT, "dist/cli.js")];

export class Shell {
  readonly #opts: ShellOptions;

  constructor(opts: ShellOptions) {
    this.#opts = opts;
  }

  async run(line: string, opts: RunOptions = {}): Promise<CommandResult> {
    const [name, ...args] = shellWords(line);
    const program = name === undefined ? undefined : this.#opts.programs[name];
    if (!program)
      throw new Error(
        `${line}: no program "${name}" (known: ${Object.keys(this.#opts.programs).join(", ")})`,
      );
    const echo = opts.quiet ? undefined : this.#opts.echo;
    echo?.command(line);
    const started = Date.now();
    const child = spawn(program[0]!, [...program.slice(1), ...args], {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, ...this.#opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let output = "";
    // Decoded per stream, so that a character split across two chunks stays whole.
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      output += d;
      echo?.output(d);
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      output += d;
      echo?.output(d);
    });
    child.stdin.end(opts.input ?? "");
    const timeoutMs = opts.timeoutMs ?? 300_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    const code = await new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      // A shell's convention for a process killed by a signal: 128 + its number.
      child.on("close", (c, signal) => resolve(c ?? 128 + (signal ? constants.signals[signal] : 0)));
    }).finally(() => clearTimeout(timer));
    const result = { line, code, stdout, stderr, output, ms: Date.now() - started };
    echo?.done?.(result);
    if ((opts.check ?? true) && code !== 0) {
      const why = timedOut ? `timed out after ${timeoutMs / 1000}s` : `exit code ${code}`;
      throw new Error(`\`${line}\` failed (${why}):\n${output}`);
    }
    return result;
  }

  /** Runs a command and parses its stdout as JSON (`-o json`). */
  async json<T>(line: string): Promise<T> {
    return JSON.parse((await this.run(line, { quiet: true })).stdout) as T;
  }
}

/**
 * Splits a command line into words as a POSIX shell does for the guide's commands: blanks
 * separate words; '…' keeps everything literally; "…" keeps everything but \" and \\. No
 * variables, pipes or redirections: a command here is one program with its arguments.
 */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === " " || c === "\t" || c === "\n") {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line}`);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      word ??= "";
      for (i++; ; i++) {
        if (i >= line.length) throw new Error(`unterminated " in: ${line}`);
        const d = line[i]!;
        if (d === '"') break;
        if (d === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) word += line[++i];
        else word += d;
      }
    } else if (c === "\\") {
      if (i + 1 >= line.length) throw new Error(`trailing \\ in: ${line}`);
      word = (word ?? "") + line[++i];
    } else if (/[|&;<>$`]/.test(c) || (c === "#" && word === undefined)) {
      // Pipes, redirections, variables, comments: a shell would act on them, this runner cannot.
      throw new Error(`shell syntax "${c}" is not supported in: ${line}`);
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

// `kubectl port-forward TARGET :PORT` in the background, for a cluster whose Service and pod
// addresses this machine cannot reach: resolves once kubectl says which local port it took.
import { spawn } from "node:child_process";
import type { Echo } from "../test/cluster/workflow/shell.ts";

export interface PortForward {
  /** 127.0.0.1:<local port> */
  address: string;
  stop(): void;
}

const READY_TIMEOUT_MS = 60_000;

export function portForward(
  kubectl: string,
  target: string,
  remotePort: number,
  env: Record<string, string>,
  echo: Echo,
): Promise<PortForward> {
  const args = ["port-forward", target, `:${remotePort}`, "--address", "127.0.0.1"];
  echo.command(`kubectl ${args.join(" ")} &`);
  const child = spawn(kubectl, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const stop = () => child.kill("SIGTERM");
  return new Promise((resolve, reject) => {
    let output = "";
    let ready = false;
    const timer = setTimeout(() => {
      stop();
      reject(
        new Error(
          `kubectl port-forward ${target} did not start within ${READY_TIMEOUT_MS / 1000}s:\n${output}`,
        ),
      );
    }, READY_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      // Afterwards kubectl says "Handling connection for ..." for each connection: not shown.
      if (ready) return;
      output += d.toString();
      const port = new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${remotePort}`).exec(output)?.[1];
      if (port) {
        ready = true;
        clearTimeout(timer);
        echo.output(output);
        resolve({ address: `127.0.0.1:${port}`, stop });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`kubectl port-forward ${target} exited (code ${code}):\n${output}`));
    });
  });
}

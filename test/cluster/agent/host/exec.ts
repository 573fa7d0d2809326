// Runs host tools (ip, iptables, mount) and reports their failures with the command line
// and its stderr, so that a log line says what went wrong without reproducing it by hand.
import { spawn } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  readonly result: RunResult;
  constructor(argv: readonly string[], result: RunResult) {
    super(`${argv.join(" ")} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
    this.result = result;
  }
}

/** Runs a command to completion; rejects with CommandError on a non-zero exit unless allowed. */
export function run(
  argv: readonly string[],
  opts: { input?: string; allowFailure?: boolean; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const input = opts.input;
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : undefined;
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${argv[0]}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? (signal ? 128 : 1), stdout, stderr };
      if (result.code !== 0 && !opts.allowFailure) reject(new CommandError(argv, result));
      else resolve(result);
    });
    if (input !== undefined && child.stdin) {
      // A command that exits without reading its input closes the pipe: its exit code tells.
      child.stdin.on("error", () => {});
      child.stdin.end(input);
    }
  });
}

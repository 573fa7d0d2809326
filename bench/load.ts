// The benchmark's load generator, run by bench/webhook.ts as a process of its own, so that it
// shares nothing with the servers or the orchestrator but the machine. It keeps a fixed
// number of keep-alive TLS connections busy with one POST each at a time (a closed loop, as
// the apiserver's admission calls are), for a fixed time, and prints one JSON line: requests,
// elapsed seconds, its own CPU time and, given --server-pid on Linux, the server's CPU time
// in the same window. The latencies (ms, float64) go to the --latencies file.
//
// It speaks just enough HTTP/1.1 for this: one prepared request, answers with Content-Length.
// node:https would cost it more CPU per request than the baseline server spends answering
// one; on a 2-core machine it would then cap the baseline's throughput but not the webhook's,
// and the ratio would flatter the webhook.
import { readFileSync, writeFileSync } from "node:fs";
import { connect, type TLSSocket } from "node:tls";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    ca: { type: "string" },
    body: { type: "string" },
    seconds: { type: "string" },
    connections: { type: "string" },
    latencies: { type: "string" },
    "server-pid": { type: "string" },
  },
});

const port = Number(values.port);
const connections = Number(values.connections);
const seconds = Number(values.seconds);
const body = readFileSync(values.body ?? "");
const request = Buffer.concat([
  Buffer.from(
    `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n`,
  ),
  body,
]);

const HEADER_END = Buffer.from("\r\n\r\n");
const CONTENT_LENGTH = /\r\ncontent-length:\s*(\d+)/i;

/** Latencies in ms, in a growing typed array: no garbage per request in the generator. */
let latencies = new Float64Array(1 << 16);
let count = 0;
function record(ms: number): void {
  if (count === latencies.length) {
    const bigger = new Float64Array(latencies.length * 2);
    bigger.set(latencies);
    latencies = bigger;
  }
  latencies[count++] = ms;
}

function run(socket: TLSSocket, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let bodyLeft = -1;
    let sentAt = 0;

    const send = (): void => {
      if (performance.now() >= deadline) {
        socket.end();
        resolve();
        return;
      }
      sentAt = performance.now();
      socket.write(request);
    };

    socket.on("data", (chunk: Buffer) => {
      if (bodyLeft < 0) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        const head = pending.length === 1 ? chunk : Buffer.concat(pending, pendingBytes);
        const end = head.indexOf(HEADER_END);
        if (end < 0) return;
        const header = head.toString("latin1", 0, end);
        if (!header.startsWith("HTTP/1.1 200 ")) {
          reject(new Error(`the server answered ${header.split("\r\n")[0] ?? ""}`));
          socket.destroy();
          return;
        }
        const length = CONTENT_LENGTH.exec(header);
        if (!length) {
          reject(new Error("the server answered without Content-Length"));
          socket.destroy();
          return;
        }
        bodyLeft = Number(length[1]) - (head.length - end - HEADER_END.length);
        pending = [];
        pendingBytes = 0;
      } else {
        bodyLeft -= chunk.length;
      }
      if (bodyLeft === 0) {
        record(performance.now() - sentAt);
        bodyLeft = -1;
        send();
      }
    });
    socket.on("error", reject);
    send();
  });
}

function open(ca: Buffer): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername: "localhost", ca }, () => resolve(socket));
    socket.once("error", reject);
  });
}

// Handshakes first: the measurement is about answering requests on open connections.
const ca = readFileSync(values.ca ?? "");
const sockets = await Promise.all(Array.from({ length: connections }, () => open(ca)));
const serverCpu0 = serverCpuSeconds();
const cpu = process.cpuUsage();
const started = performance.now();
await Promise.all(sockets.map((s) => run(s, started + seconds * 1000)));
const elapsed = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
const serverCpu1 = serverCpuSeconds();

writeFileSync(values.latencies ?? "", latencies.subarray(0, count));
console.log(
  JSON.stringify({
    requests: count,
    seconds: elapsed,
    cpuSeconds: (used.user + used.system) / 1e6,
    serverCpuSeconds: serverCpu0 === undefined || serverCpu1 === undefined ? null : serverCpu1 - serverCpu0,
  }),
);

/**
 * The server's CPU time (all its threads, user and system) from /proc/PID/stat, in the
 * kernel's USER_HZ ticks, which are 1/100 s on every Linux that Node runs on. Elsewhere,
 * or without --server-pid: undefined.
 */
function serverCpuSeconds(): number | undefined {
  if (values["server-pid"] === undefined) return undefined;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${values["server-pid"]}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The fields after the command name (which may hold spaces): utime and stime are the
  // 12th and 13th of them.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

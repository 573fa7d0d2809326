// The SPDY/3.1 server side that kubectl exec and port-forward reach through the apiserver.
import { createHash } from "node:crypto";
import { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  controlFrame,
  dataFrame,
  decodeHeaderBlock,
  encodeHeaderBlock,
  HeaderCodec,
  SPDY_DICTIONARY,
  SpdyServerConnection,
  type SpdyStream,
} from "../../cluster/agent/node/spdy.ts";
import { execOptions, execStatus } from "../../cluster/agent/node/streaming.ts";
import { negotiate } from "../../cluster/agent/node/kubelet-server.ts";

/** A socket whose far end is the test: frames pushed in, frames written collected. */
function socketPair() {
  const written: Buffer[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      cb();
    },
  });
  return { socket, written };
}

/** A client as spdystream is one: its own compression context for the headers it sends. */
async function synStream(client: HeaderCodec, id: number, headers: Record<string, string>, flags = 0) {
  const block = await client.run(encodeHeaderBlock(headers));
  const head = Buffer.alloc(10);
  head.writeUInt32BE(id, 0);
  return controlFrame(1, flags, Buffer.concat([head, block]));
}

function frames(
  buf: Buffer,
): { control: boolean; type?: number; id: number; flags: number; payload: Buffer }[] {
  const out = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32BE(off + 4) & 0xffffff;
    const control = (buf[off]! & 0x80) !== 0;
    const payload = buf.subarray(off + 8, off + 8 + len);
    out.push({
      control,
      ...(control ? { type: buf.readUInt16BE(off + 2) } : {}),
      id: control
        ? payload.length >= 4
          ? payload.readUInt32BE(0) & 0x7fffffff
          : 0
        : buf.readUInt32BE(off) & 0x7fffffff,
      flags: buf[off + 4]!,
      payload,
    });
    off += 8 + len;
  }
  return out;
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe("SPDY/3.1 server connection", () => {
  it("builds the SPDY/3 header dictionary of the specification", () => {
    expect(SPDY_DICTIONARY.length).toBe(1423);
    expect(createHash("sha256").update(SPDY_DICTIONARY).digest("hex")).toBe(
      "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02",
    );
  });

  it("accepts streams, answers with SYN_REPLY, and carries data both ways until FIN", async () => {
    const { socket, written } = socketPair();
    const conn = new SpdyServerConnection(socket);
    const streams: SpdyStream[] = [];
    const received: string[] = [];
    conn.on("stream", (s: SpdyStream) => {
      streams.push(s);
      s.on("data", (d: Buffer) => received.push(`${s.id}:${d.toString()}`));
      s.on("end", () => received.push(`${s.id}:FIN`));
    });
    const client = new HeaderCodec("deflate");
    socket.push(await synStream(client, 1, { streamtype: "error", port: "8080", requestid: "0" }));
    // A second block on the same compression context, as a real client sends it.
    socket.push(await synStream(client, 3, { streamtype: "data", port: "8080", requestid: "0" }));
    socket.push(dataFrame(3, 0, Buffer.from("hello")));
    socket.push(dataFrame(3, 1, Buffer.alloc(0)));
    await tick();

    expect(streams.map((s) => [s.id, s.headers])).toEqual([
      [1, { streamtype: "error", port: "8080", requestid: "0" }],
      [3, { streamtype: "data", port: "8080", requestid: "0" }],
    ]);
    expect(received).toEqual(["3:hello", "3:FIN"]);

    streams[1]!.write(Buffer.from("world"));
    streams[1]!.end();
    const out = frames(Buffer.concat(written));
    const replies = out.filter((f) => f.control && f.type === 2);
    expect(replies.map((f) => f.id)).toEqual([1, 3]);
    // The replies' header blocks decode with one shared context: empty header sets.
    const server = new HeaderCodec("inflate");
    for (const r of replies) expect(decodeHeaderBlock(await server.run(r.payload.subarray(4)))).toEqual({});
    const data = out.filter((f) => !f.control);
    expect(data.map((f) => [f.id, f.flags, f.payload.toString()])).toEqual([
      [3, 0, "world"],
      [3, 1, ""],
    ]);
  });

  it("answers the client's pings and reports resets", async () => {
    const { socket, written } = socketPair();
    const conn = new SpdyServerConnection(socket);
    const resets: number[] = [];
    conn.on("stream", (s: SpdyStream) => s.on("reset", () => resets.push(s.id)));
    const client = new HeaderCodec("deflate");
    socket.push(await synStream(client, 5, { streamtype: "stdout" }));
    const ping = Buffer.alloc(4);
    ping.writeUInt32BE(7);
    socket.push(controlFrame(6, 0, ping));
    const rst = Buffer.alloc(8);
    rst.writeUInt32BE(5, 0);
    rst.writeUInt32BE(5, 4);
    socket.push(controlFrame(3, 0, rst));
    await tick();
    expect(
      frames(Buffer.concat(written))
        .filter((f) => f.type === 6)
        .map((f) => f.id),
    ).toEqual([7]);
    expect(resets).toEqual([5]);
  });
});

describe("exec and port-forward requests", () => {
  it("reads the exec options as the kubelet does (tty drops a separate stderr)", () => {
    const q = new URLSearchParams("command=sh&command=-c&command=echo+hi&input=1&output=1&error=1&tty=1");
    expect(execOptions(q)).toEqual({
      command: ["sh", "-c", "echo hi"],
      stdin: true,
      stdout: true,
      stderr: false,
      tty: true,
    });
    expect(execOptions(new URLSearchParams("command=ls"))).toBe(
      "you must specify at least 1 of stdin, stdout, stderr",
    );
  });

  it("ends an exec with the v4 status that kubectl turns into its exit code", () => {
    expect(execStatus(0, ["true"])).toEqual({ metadata: {}, status: "Success" });
    expect(execStatus(3, ["sh", "-c", "exit 3"])).toMatchObject({
      status: "Failure",
      reason: "NonZeroExitCode",
      details: { causes: [{ reason: "ExitCode", message: "3" }] },
    });
  });

  it("negotiates the first offered protocol the server speaks", () => {
    expect(negotiate("v5.channel.k8s.io, v4.channel.k8s.io,v3.channel.k8s.io", ["v4.channel.k8s.io"])).toBe(
      "v4.channel.k8s.io",
    );
    expect(negotiate(["portforward.k8s.io"], ["portforward.k8s.io"])).toBe("portforward.k8s.io");
    expect(negotiate(undefined, ["portforward.k8s.io"])).toBeUndefined();
  });
});

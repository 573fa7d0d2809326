// The server side of SPDY/3.1, as far as the kubelet's streaming API uses it: the apiserver
// (or kubectl, tunnelled through it) opens streams with SYN_STREAM, the server answers each
// with SYN_REPLY, and both sides send data frames until FIN or RST_STREAM. Header blocks are
// zlib-compressed with the SPDY/3 dictionary, one compression context per direction for the
// whole connection. Flow control (WINDOW_UPDATE) is ignored, as Kubernetes' spdystream
// library does; PING is answered; SETTINGS and HEADERS are ignored.
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from "node:zlib";

const VERSION = 3;
const TYPE = {
  synStream: 1,
  synReply: 2,
  rstStream: 3,
  settings: 4,
  ping: 6,
  goAway: 7,
  headers: 8,
  windowUpdate: 9,
};
const FLAG_FIN = 0x01;
const RST_CANCEL = 5;
const MAX_DATA_FRAME = 64 * 1024;

/**
 * The SPDY/3 header compression dictionary (SPDY draft 3, section 2.6.10.1): length-prefixed
 * header names and values, then a run of common strings.
 */
export const SPDY_DICTIONARY: Buffer = (() => {
  const words = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
  ];
  const tail =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505" +
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized" +
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable" +
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT" +
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain," +
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
  const parts = words.flatMap((w) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    return [len, Buffer.from(w, "latin1")];
  });
  return Buffer.concat([...parts, Buffer.from(tail, "latin1")]);
})();

export type Headers = Record<string, string>;

/** Encodes a header block (before compression): count, then length-prefixed names and values. */
export function encodeHeaderBlock(headers: Headers): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [u32(entries.length)];
  for (const [name, value] of entries) {
    const n = Buffer.from(name.toLowerCase());
    const v = Buffer.from(value);
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): Headers {
  const headers: Headers = {};
  let off = 0;
  const read = () => {
    const len = block.readUInt32BE(off);
    const s = block.subarray(off + 4, off + 4 + len).toString();
    off += 4 + len;
    return s;
  };
  const count = block.readUInt32BE(0);
  off = 4;
  for (let i = 0; i < count; i++) {
    const name = read();
    headers[name] = read();
  }
  return headers;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8000 | VERSION, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE(((flags << 24) | payload.length) >>> 0, 4);
  return Buffer.concat([h, payload]);
}

export function dataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(streamId & 0x7fffffff, 0);
  h.writeUInt32BE(((flags << 24) | data.length) >>> 0, 4);
  return Buffer.concat([h, data]);
}

/** A zlib context shared by all header blocks of one direction of a connection. */
export class HeaderCodec {
  private readonly zlib: Inflate | Deflate;

  constructor(mode: "inflate" | "deflate") {
    this.zlib =
      mode === "inflate"
        ? createInflate({ dictionary: SPDY_DICTIONARY })
        : createDeflate({ dictionary: SPDY_DICTIONARY });
  }

  /** Feeds one block through the shared context, ending it with a sync flush. */
  run(input: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const onData = (c: Buffer) => chunks.push(c);
      const onError = (err: Error) => {
        this.zlib.off("data", onData);
        reject(err);
      };
      this.zlib.on("data", onData);
      this.zlib.once("error", onError);
      this.zlib.write(input);
      this.zlib.flush(constants.Z_SYNC_FLUSH, () => {
        this.zlib.off("data", onData);
        this.zlib.off("error", onError);
        resolve(Buffer.concat(chunks));
      });
    });
  }

  close(): void {
    this.zlib.close();
  }
}

/** One SPDY stream opened by the client. Emits "data" (Buffer), "end" and "reset". */
export class SpdyStream extends EventEmitter {
  readonly id: number;
  readonly headers: Headers;
  private readonly conn: SpdyServerConnection;
  private ended = false;

  constructor(conn: SpdyServerConnection, id: number, headers: Headers) {
    super();
    this.conn = conn;
    this.id = id;
    this.headers = headers;
  }

  write(data: Buffer): void {
    if (this.ended) return;
    for (let off = 0; off < data.length; off += MAX_DATA_FRAME) {
      this.conn.send(dataFrame(this.id, 0, data.subarray(off, off + MAX_DATA_FRAME)));
    }
  }

  /** Half-closes the stream from the server's side (FIN). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.conn.send(dataFrame(this.id, FLAG_FIN, Buffer.alloc(0)));
  }

  reset(): void {
    if (this.ended) return;
    this.ended = true;
    this.conn.send(controlFrame(TYPE.rstStream, 0, Buffer.concat([u32(this.id), u32(RST_CANCEL)])));
  }
}

/** A SPDY/3.1 server connection over an upgraded socket. Emits "stream" and "close". */
export class SpdyServerConnection extends EventEmitter {
  private readonly socket: Duplex;
  private readonly inflater = new HeaderCodec("inflate");
  private readonly deflater = new HeaderCodec("deflate");
  private readonly streams = new Map<number, SpdyStream>();
  private buffer = Buffer.alloc(0);
  /** Frames are handled one at a time, in order: header decompression is stateful. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(socket: Duplex) {
    super();
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("close", () => this.shutdown());
    socket.on("error", () => this.shutdown());
  }

  send(frame: Buffer): void {
    if (!this.closed) this.socket.write(frame);
  }

  close(): void {
    this.socket.end();
    this.shutdown();
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) s.emit("reset");
    this.streams.clear();
    this.inflater.close();
    this.deflater.close();
    this.emit("close");
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 8) {
      const length = this.buffer.readUInt32BE(4) & 0xffffff;
      if (this.buffer.length < 8 + length) break;
      const frame = this.buffer.subarray(0, 8 + length);
      this.buffer = this.buffer.subarray(8 + length);
      this.queue = this.queue.then(() => this.handle(frame)).catch(() => this.close());
    }
  }

  private async handle(frame: Buffer): Promise<void> {
    const flags = frame[4]!;
    const payload = frame.subarray(8);
    if ((frame[0]! & 0x80) === 0) {
      const stream = this.streams.get(frame.readUInt32BE(0) & 0x7fffffff);
      if (!stream) return;
      if (payload.length) stream.emit("data", Buffer.from(payload));
      if (flags & FLAG_FIN) stream.emit("end");
      return;
    }
    const type = frame.readUInt16BE(2);
    if (type === TYPE.synStream) {
      const id = payload.readUInt32BE(0) & 0x7fffffff;
      const headers = decodeHeaderBlock(await this.inflater.run(payload.subarray(10)));
      const reply = await this.deflater.run(encodeHeaderBlock({}));
      const stream = new SpdyStream(this, id, headers);
      this.streams.set(id, stream);
      this.send(controlFrame(TYPE.synReply, 0, Buffer.concat([u32(id), reply])));
      this.emit("stream", stream);
      if (flags & FLAG_FIN) stream.emit("end");
    } else if (type === TYPE.headers) {
      // Keep the decompression context in step; the headers themselves are not used.
      await this.inflater.run(payload.subarray(4));
    } else if (type === TYPE.rstStream) {
      const id = payload.readUInt32BE(0) & 0x7fffffff;
      this.streams.get(id)?.emit("reset");
      this.streams.delete(id);
    } else if (type === TYPE.ping) {
      // Echo the client's pings (odd ids); an even id would be the answer to one of ours.
      if (payload.readUInt32BE(0) % 2 === 1) this.send(controlFrame(TYPE.ping, 0, payload));
    } else if (type === TYPE.goAway) {
      this.close();
    }
  }
}

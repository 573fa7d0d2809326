// Uint8Array.prototype.toBase64 and Uint8Array.fromBase64 (TC39, "ArrayBuffer to/from
// base64") on Node's native Buffer codec, for the Node versions whose V8 does not have them yet
// (Node 24). jose uses them when they exist; without them it falls back to btoa/atob over a
// binary string and a per-byte loop in JavaScript, which made sealing a 16 MiB state take 0.8 s
// and 250 MB above the sidecar's resting size, against 0.14 s and 110 MB with these
// (docs/performance.md). Installed only where the engine has none, so a Node that ships them
// keeps its own. Decoding refuses, as the proposal does, any character outside the alphabet
// (SyntaxError), a lone trailing character, and bad or misplaced padding.
import { Buffer } from "node:buffer";

type Alphabet = "base64" | "base64url";
type LastChunkHandling = "loose" | "strict" | "stop-before-partial";

interface ToBase64Options {
  alphabet?: Alphabet;
  omitPadding?: boolean;
}
interface FromBase64Options {
  alphabet?: Alphabet;
  lastChunkHandling?: LastChunkHandling;
}

const WHITESPACE = /[\t\n\f\r ]/g;
const CHARS: Record<Alphabet, RegExp> = { base64: /^[A-Za-z0-9+/]*$/, base64url: /^[A-Za-z0-9_-]*$/ };

function alphabetOf(options: { alphabet?: unknown } | undefined): Alphabet {
  const alphabet = options?.alphabet ?? "base64";
  if (alphabet !== "base64" && alphabet !== "base64url") {
    throw new TypeError(`alphabet must be "base64" or "base64url"`);
  }
  return alphabet;
}

export function toBase64(bytes: Uint8Array, options?: ToBase64Options): string {
  const alphabet = alphabetOf(options);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString(alphabet);
  // Node writes base64 padded and base64url unpadded.
  const unpadded = text.replace(/=+$/, "");
  return options?.omitPadding ? unpadded : unpadded + "=".repeat((4 - (unpadded.length % 4)) % 4);
}

export function fromBase64(input: unknown, options?: FromBase64Options): Uint8Array {
  if (typeof input !== "string") throw new TypeError("fromBase64 takes a string");
  const alphabet = alphabetOf(options);
  const handling = options?.lastChunkHandling ?? "loose";
  if (handling !== "loose" && handling !== "strict" && handling !== "stop-before-partial") {
    throw new TypeError(`lastChunkHandling must be "loose", "strict" or "stop-before-partial"`);
  }
  const text = input.replace(WHITESPACE, "");
  const padding = /=*$/.exec(text)![0].length;
  let body = text.slice(0, text.length - padding);
  if (!CHARS[alphabet].test(body))
    throw new SyntaxError("not a base64 string: a character outside the alphabet");
  const partial = body.length % 4;
  if (padding > 0) {
    // Padding completes a chunk of 2 (==) or 3 (=) characters, and nothing follows it.
    if (padding > 2 || partial + padding !== 4) throw new SyntaxError("not a base64 string: bad padding");
  } else if (partial !== 0) {
    if (handling === "strict") throw new SyntaxError("not a base64 string: the last chunk is not padded");
    if (handling === "stop-before-partial") body = body.slice(0, body.length - partial);
    else if (partial === 1) throw new SyntaxError("not a base64 string: a lone character at the end");
  }
  const decoded = Buffer.from(body, alphabet);
  if (handling === "strict" && Buffer.from(decoded).toString(alphabet).replace(/=+$/, "") !== body) {
    throw new SyntaxError("not a base64 string: the last chunk has bits set that it does not use");
  }
  return new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.length);
}

/** Installs both where the engine has neither. */
export function installNativeBase64(): void {
  const proto = Uint8Array.prototype as { toBase64?: unknown };
  const ctor = Uint8Array as { fromBase64?: unknown };
  if (proto.toBase64 !== undefined || ctor.fromBase64 !== undefined) return;
  Object.defineProperty(Uint8Array.prototype, "toBase64", {
    value: function (this: Uint8Array, options?: ToBase64Options) {
      return toBase64(this, options);
    },
    writable: true,
    configurable: true,
  });
  Object.defineProperty(Uint8Array, "fromBase64", { value: fromBase64, writable: true, configurable: true });
}

// node:http for the modules that every Coordinator pod loads (the recovery sidecar, the
// reference Coordinator). Taken with process.getBuiltinModule instead of an ESM import on
// purpose: an ESM import builds the module's namespace, which reads every export, and Node 24's
// http exports WebSocket, CloseEvent and MessageEvent as getters that load undici, http2, zlib
// and more: about 13 MB of resident memory per process (docs/performance.md) for nothing used.
// Types can still come from `import type … from "node:http"`.
const http = process.getBuiltinModule("node:http");

export const createServer = http.createServer;
export const request = http.request;

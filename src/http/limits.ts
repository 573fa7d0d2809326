// How long and how many connections a server keeps, for every server we run (webhook,
// handler, the sidecar's peer API and probes, the reference Coordinator). Node's defaults
// let a client hold a connection for minutes: 60 s to send its headers, 300 s for the whole
// request, and those timeouts are only checked every 30 s, so a peer API with a 30 s request
// timeout still held a slow request after 60 s. An unauthenticated client could open
// hundreds of such connections. Here each server gets deadlines that its callers never need
// to come near, checked every second, and a cap on open connections (beyond it Node closes
// new connections at once).
import type { Server as HttpServer, ServerOptions as HttpServerOptions } from "node:http";

export interface ServerLimits {
  /** The request head must be complete this long after the connection (or request) starts. */
  headersTimeoutMs: number;
  /** The whole request, body included, must have arrived by then. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** A connection on which nothing at all happens (not even a TLS handshake) is closed. */
  idleTimeoutMs: number;
  /** Open connections at most; more are closed on accept. */
  maxConnections: number;
}

/**
 * A server whose callers are our own components, with small requests (handler, peer API).
 * The idle timeout leaves room for the handler's long polls (up to 30 s without a byte).
 */
export const API_LIMITS: ServerLimits = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 45_000,
  maxConnections: 256,
};

/**
 * The handler: as API_LIMITS, with room for one long-poll per sidecar it serves
 * (MAX_LONG_POLLS, src/handler/head-calls.ts) and 256 connections besides for confirmations,
 * peers and holds. At about 85 KiB per held TLS connection, a full replica holds some 65 MiB.
 */
export const HANDLER_LIMITS: ServerLimits = {
  ...API_LIMITS,
  maxConnections: 768,
};

/**
 * The webhook: the apiserver sends up to 3 MiB and gives up after at most 30 s itself, and
 * reuses its connections for many reviews, so idle ones stay longer than the apiserver's own
 * idle timeout would suggest racing with (a close just as it sends a review fails that review).
 */
export const WEBHOOK_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  idleTimeoutMs: 70_000,
  maxConnections: 512,
};

/**
 * The reference Coordinator's user API: small requests, but an update waits for its quorum
 * (through the sidecar's commit API) before the answer, without a byte on the wire meanwhile.
 */
export const USER_API_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  maxConnections: 256,
};

/**
 * The sidecar's local commit API: the app on loopback sends up to a whole bundle, and the
 * answer waits for the quorum (up to 70 s) without a byte on the wire meanwhile.
 */
export const COMMIT_API_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  maxConnections: 16,
};

/** The kubelet's probes: one small request each. */
export const PROBE_LIMITS: ServerLimits = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 5_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 10_000,
  maxConnections: 32,
};

/** How often Node looks for connections past their deadlines (its default is 30 s). */
const CHECK_INTERVAL_MS = 1_000;

/** Options for createServer (http or https); the deadlines are fixed at creation. */
export function serverOptions(limits: ServerLimits): HttpServerOptions & { handshakeTimeout: number } {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(CHECK_INTERVAL_MS, limits.headersTimeoutMs),
    // TLS servers: a TCP connection that never completes its handshake.
    handshakeTimeout: limits.headersTimeoutMs,
  };
}

/** The limits that can only be set on the created server. */
export function applyLimits(server: HttpServer, limits: ServerLimits): void {
  server.maxConnections = limits.maxConnections;
  // A socket with no traffic at all for this long is destroyed.
  server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
}

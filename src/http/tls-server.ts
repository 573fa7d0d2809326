// An HTTPS server whose certificate is reloaded when its files change, so that a rotated
// certificate (cert-manager, Helm upgrade, a mounted Secret update) reaches new
// connections without a restart. Certificates read once at startup expire in production
// (Linkerd #4977).
import { watch, readFileSync, type FSWatcher } from "node:fs";
import { createServer, type Server } from "node:https";
import { dirname } from "node:path";
import type { RequestListener } from "node:http";
import type { Logger } from "pino";
import { applyLimits, serverOptions, type ServerLimits } from "./limits.ts";

export interface TlsServerOptions {
  port: number;
  host?: string;
  certFile: string;
  keyFile: string;
  handler: RequestListener;
  logger: Logger;
  /** Deadlines and the connection cap (limits.ts). */
  limits: ServerLimits;
}

export interface TlsServer {
  server: Server;
  /** The port actually bound (useful with port 0). */
  port: number;
  /**
   * Re-reads the certificate and key now and serves them if they changed; returns false (and
   * keeps the old pair) on error.
   */
  reload(): boolean;
  /**
   * Stops accepting, lets requests in flight finish for up to drainMs (the apiserver's calls
   * still get their answer), then drops every connection.
   */
  close(drainMs?: number): Promise<void>;
}

function readPair(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

export async function startTlsServer(opts: TlsServerOptions): Promise<TlsServer> {
  let current = readPair(opts.certFile, opts.keyFile);
  const server = createServer({ ...current, ...serverOptions(opts.limits) }, opts.handler);
  applyLimits(server, opts.limits);

  const reload = (): boolean => {
    try {
      const next = readPair(opts.certFile, opts.keyFile);
      // The directory watch also fires for unrelated files (and for our own reads on some
      // file systems): only a changed pair is a rotation.
      if (next.cert.equals(current.cert) && next.key.equals(current.key)) return true;
      server.setSecureContext(next);
      current = next;
      opts.logger.info({ certFile: opts.certFile }, "reloaded TLS certificate");
      return true;
    } catch (err) {
      // A half-written pair (cert updated, key not yet) fails here; the next change event
      // retries, and the old pair keeps serving meanwhile.
      opts.logger.warn({ err: String(err), certFile: opts.certFile }, "TLS certificate reload failed");
      return false;
    }
  };

  // Watch the directories, not the files: Kubernetes updates Secret volumes by swapping
  // a symlink, which a watch on the old file never sees.
  let timer: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [...new Set([dirname(opts.certFile), dirname(opts.keyFile)])].map((dir) =>
    watch(dir, () => {
      clearTimeout(timer);
      timer = setTimeout(reload, 100);
    }),
  );

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;

  return {
    server,
    port,
    reload,
    close: async (drainMs = 0) => {
      clearTimeout(timer);
      for (const w of watchers) w.close();
      // close() stops accepting and drops idle keep-alive connections at once.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (timeout = setTimeout(resolve, drainMs)))]);
      clearTimeout(timeout);
      server.closeAllConnections();
      await closed;
    },
  };
}

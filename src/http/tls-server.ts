// An HTTPS server whose certificate is reloaded when its files change, so that a rotated
// certificate (cert-manager, Helm upgrade, a mounted Secret update) reaches new
// connections without a restart. Certificates read once at startup expire in production
// (Linkerd #4977).
import { watch, readFileSync, type FSWatcher } from "node:fs";
import { createServer, type Server } from "node:https";
import { dirname } from "node:path";
import type { RequestListener } from "node:http";
import type { Logger } from "pino";

export interface TlsServerOptions {
  port: number;
  host?: string;
  certFile: string;
  keyFile: string;
  handler: RequestListener;
  logger: Logger;
}

export interface TlsServer {
  server: Server;
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Re-reads the certificate and key now; returns false (and keeps the old pair) on error. */
  reload(): boolean;
  close(): Promise<void>;
}

function readPair(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

export async function startTlsServer(opts: TlsServerOptions): Promise<TlsServer> {
  const server = createServer({ ...readPair(opts.certFile, opts.keyFile) }, opts.handler);
  // Keep-alive connections from the apiserver are reused for many reviews.
  server.keepAliveTimeout = 65_000;

  const reload = (): boolean => {
    try {
      server.setSecureContext(readPair(opts.certFile, opts.keyFile));
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
    close: async () => {
      clearTimeout(timer);
      for (const w of watchers) w.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

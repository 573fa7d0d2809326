// Binding and closing a node:http(s) server as promises, for servers that need no
// certificate reload (plain HTTP probes, a TLS server with an in-memory certificate).
import type { Server } from "node:net";

/** Listens on `port` (0 picks a free one) and resolves to the port actually bound. */
export async function listen(server: Server, port: number, host?: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // No host: every address, IPv6 and IPv4, as a pod's containers expect.
    server.listen({ port, host }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === "object" && address ? address.port : port;
}

/** Stops accepting, drops idle and in-flight connections, and resolves once closed. */
export async function close(server: Server & { closeAllConnections?: () => void }): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections?.();
  await closed;
}

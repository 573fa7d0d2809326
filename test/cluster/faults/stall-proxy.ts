// A TCP proxy that can stop forwarding without closing anything: the silent failure of a
// stateful firewall or a NAT that dropped its entry, or a half-dead apiserver. While stalled,
// the open connections stay open and carry nothing either way, and a new connection is accepted
// and then hears nothing; TLS runs end to end through it, so the client sees a silent server.
import { createServer, connect, type Socket } from "node:net";

export interface StallProxy {
  /** https://127.0.0.1:<port> */
  url: string;
  stall(): void;
  /** Forwards again; the connections opened before or during the stall are cut (they are dead). */
  resume(): void;
  close(): Promise<void>;
}

export async function startStallProxy(target: { host: string; port: number }): Promise<StallProxy> {
  let stalled = false;
  const open = new Set<Socket>();
  const held: Socket[] = [];
  const server = createServer((client) => {
    open.add(client);
    client.on("close", () => open.delete(client));
    client.on("error", () => undefined);
    if (stalled) {
      held.push(client);
      client.pause();
      return;
    }
    const upstream = connect(target.port, target.host);
    open.add(upstream);
    upstream.on("close", () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    // Forward by hand, not with pipe(), so that a stall drops the bytes on the floor silently.
    client.on("data", (d: Buffer) => {
      if (!stalled) upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (!stalled) client.write(d);
    });
    pairs.push({ client, upstream });
  });
  const pairs: { client: Socket; upstream: Socket }[] = [];
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    stall() {
      stalled = true;
    },
    resume() {
      // What was open across the stall lost bytes: a real peer would have reset it.
      for (const p of pairs.splice(0)) {
        p.client.destroy();
        p.upstream.destroy();
      }
      for (const c of held.splice(0)) c.destroy();
      stalled = false;
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// The lazily loaded request listener over a real HTTP server: loaded once, on the first
// request, shared by requests that arrive while it loads, and retried after a failed load.
import { createServer, type RequestListener } from "node:http";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { lazyListener } from "../../../src/http/lazy-listener.ts";
import { close, listen } from "../../../src/http/listen.ts";

const logger = pino({ level: "silent" });
const servers: ReturnType<typeof createServer>[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map(close));
});

async function serve(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  return `http://127.0.0.1:${await listen(server, 0, "127.0.0.1")}`;
}

const hello: RequestListener = (req, res) => res.end(`hello ${req.url}`);

describe("lazyListener", () => {
  it("loads nothing before the first request, then once for all requests", async () => {
    let loads = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const url = await serve(
      lazyListener(async () => {
        loads++;
        await gate;
        return hello;
      }, logger),
    );
    expect(loads).toBe(0);
    const answers = Promise.all([fetch(`${url}/a`), fetch(`${url}/b`)]);
    await new Promise((r) => setTimeout(r, 50));
    release();
    expect(await Promise.all((await answers).map((r) => r.text()))).toEqual(["hello /a", "hello /b"]);
    expect(await (await fetch(`${url}/c`)).text()).toBe("hello /c");
    expect(loads).toBe(1);
  });

  it("answers 503 when the load fails, and tries again on the next request", async () => {
    let loads = 0;
    const url = await serve(
      lazyListener(async () => {
        if (++loads === 1) throw new Error("module not found");
        return hello;
      }, logger),
    );
    const failed = await fetch(`${url}/x`);
    expect(failed.status).toBe(503);
    expect(await failed.json()).toEqual({ error: "the server is starting; try again" });
    expect(await (await fetch(`${url}/y`)).text()).toBe("hello /y");
    expect(loads).toBe(2);
  });
});

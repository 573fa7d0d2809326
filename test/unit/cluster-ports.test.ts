import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { findListeners } from "../cluster/launcher/ports.ts";

describe("findListeners", () => {
  it("names the process that listens on a port, on any address", async () => {
    for (const host of ["127.0.0.1", "::"]) {
      const server = createServer().listen(0, host);
      await once(server, "listening");
      const { port } = server.address() as AddressInfo;
      try {
        expect(findListeners([port])).toEqual([
          { port, pid: process.pid, command: expect.stringMatching(/node/) as string },
        ]);
      } finally {
        server.close();
      }
      await once(server, "close");
      expect(findListeners([port])).toEqual([]);
    }
  });
});

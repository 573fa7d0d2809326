// An apiserver that accepts the connection and never answers: every handler call must end
// with an error (the caller then answers 503), not hang.
import { createServer, type Server } from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { close, listen } from "../../../src/http/listen.ts";
import { kubePodApi } from "../../../src/kube/pods.ts";

let server: Server;
let kc: KubeConfig;

beforeAll(async () => {
  // Reads the request, never writes an answer.
  server = createServer(() => undefined);
  const port = await listen(server, 0, "127.0.0.1");
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "stalled", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "c", cluster: "stalled", user: "u" }],
    currentContext: "c",
  });
});
afterAll(async () => {
  await close(server);
});

describe("calls to a stalled apiserver", () => {
  it.each([
    ["GET pod", (api: ReturnType<typeof kubePodApi>) => api.get("ns", "p")],
    ["PATCH pods/status", (api: ReturnType<typeof kubePodApi>) => api.patchStatus("ns", "p", {})],
    ["POST event", (api: ReturnType<typeof kubePodApi>) => api.createEvent("ns", {} as never)],
  ])("%s fails instead of hanging", async (_what, call) => {
    // Without a deadline the call never settles, and the test times out.
    await expect(call(kubePodApi(kc, 200))).rejects.toThrow(/abort|timeout/i);
  });
});

import type { V1Container } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { appReadinessUrl } from "../../../src/webhook/readiness-url.ts";

const container = (extra: Partial<V1Container>): V1Container => ({ name: "app", ...extra });
const httpGet = (get: Record<string, unknown>, ports?: V1Container["ports"]) =>
  container({ readinessProbe: { httpGet: get as never }, ...(ports ? { ports } : {}) });

describe("appReadinessUrl", () => {
  it.each<[string, V1Container, string]>([
    [
      "a numeric port",
      httpGet({ port: 9102, path: "/probe/readiness" }),
      "http://127.0.0.1:9102/probe/readiness",
    ],
    [
      "a named port",
      httpGet({ port: "probes", path: "/ready" }, [
        { name: "api", containerPort: 1313 },
        { name: "probes", containerPort: 9102 },
      ]),
      "http://127.0.0.1:9102/ready",
    ],
    ["a port number as a string", httpGet({ port: "8080", path: "/ready" }), "http://127.0.0.1:8080/ready"],
    ["no path", httpGet({ port: 8080 }), "http://127.0.0.1:8080/"],
    ["a path without a leading slash", httpGet({ port: 8080, path: "ready" }), "http://127.0.0.1:8080/ready"],
    ["a query", httpGet({ port: 8080, path: "/ready?full=1" }), "http://127.0.0.1:8080/ready?full=1"],
    ["HTTPS", httpGet({ port: 8443, path: "/ready", scheme: "HTTPS" }), "https://127.0.0.1:8443/ready"],
    [
      "another host (the sidecar asks on loopback)",
      httpGet({ port: 80, host: "10.0.0.1" }),
      "http://127.0.0.1:80/",
    ],
    ["an unknown port name", httpGet({ port: "nope", path: "/ready" }), ""],
    ["a port out of range", httpGet({ port: 70000 }), ""],
    ["no readiness probe", container({}), ""],
    ["a tcpSocket probe", container({ readinessProbe: { tcpSocket: { port: 80 } } }), ""],
    ["an exec probe", container({ readinessProbe: { exec: { command: ["true"] } } }), ""],
  ])("resolves %s", (_what, c, url) => {
    expect(appReadinessUrl(c)).toBe(url);
  });
});

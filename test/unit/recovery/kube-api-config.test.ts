// The sidecar's KubeConfig from the credential files of its token volume, used against a real
// HTTPS server that stands in for the apiserver: the CA file verifies it, the token file is
// the bearer, and a token the kubelet renews is picked up.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { close, listen } from "../../../src/http/listen.ts";
import { discoverIssuer } from "../../../src/identity/index.ts";
import { TOKEN_VOLUME } from "../../../src/names.ts";
import {
  kubeConfigFromFiles,
  missingKubeApiCredentials,
  SIDECAR_KUBE_API_CREDENTIALS,
  type KubeApiCredentials,
} from "../../../src/recovery/kube-api-config.ts";
import { createCa, issueServingCert } from "../../../webhook-certs/x509.ts";

const ISSUER = "https://kubernetes.default.svc.cluster.local";

let dir: string;
let credentials: KubeApiCredentials;
let server: Server;
let env: Record<string, string>;
/** The Authorization header of each request the stand-in apiserver got. */
const authorizations: (string | undefined)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kube-api-config-"));
  credentials = {
    tokenFile: join(dir, "kube-api-token"),
    caFile: join(dir, "ca.crt"),
    namespaceFile: join(dir, "namespace"),
  };
  const ca = await createCa({ commonName: "kube-api-config test CA" });
  const serving = await issueServingCert(ca, { ips: ["127.0.0.1"] });
  writeFileSync(credentials.caFile, ca.certPem);
  writeFileSync(credentials.tokenFile, "first-token");
  writeFileSync(credentials.namespaceFile, "coordinators");
  server = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    authorizations.push(req.headers.authorization);
    if (req.url !== "/.well-known/openid-configuration") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ issuer: ISSUER }));
  });
  const port = await listen(server, 0, "127.0.0.1");
  env = { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(port) };
});

afterAll(async () => {
  await close(server);
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.useRealTimers();
  authorizations.length = 0;
});

describe("the sidecar's KubeConfig", () => {
  it("reaches the apiserver at the service address, verified with the CA file, with the token file", async () => {
    const kc = kubeConfigFromFiles(credentials, env);
    expect(await discoverIssuer(kc)).toBe(ISSUER);
    expect(authorizations).toEqual(["Bearer first-token"]);
    expect(kc.getCurrentCluster()?.server).toBe(`https://127.0.0.1:${env["KUBERNETES_SERVICE_PORT"]}`);
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe("coordinators");
  });

  it("picks up the token that the kubelet renews", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const kc = kubeConfigFromFiles(credentials, env);
    await discoverIssuer(kc);
    writeFileSync(credentials.tokenFile, "renewed-token");
    // Re-read once a minute, as client-go and loadFromCluster do.
    vi.setSystemTime(Date.now() + 61_000);
    await discoverIssuer(kc);
    expect(authorizations).toEqual(["Bearer first-token", "Bearer renewed-token"]);
    writeFileSync(credentials.tokenFile, "first-token");
  });

  it("refuses an apiserver that the CA file does not vouch for", async () => {
    const other = await createCa({ commonName: "another CA" });
    const caFile = join(dir, "other-ca.crt");
    writeFileSync(caFile, other.certPem);
    await expect(discoverIssuer(kubeConfigFromFiles({ ...credentials, caFile }, env))).rejects.toThrow();
    expect(authorizations).toEqual([]);
  });

  it("puts an IPv6 service host in brackets", () => {
    const kc = kubeConfigFromFiles(credentials, {
      KUBERNETES_SERVICE_HOST: "fd00:10:96::1",
      KUBERNETES_SERVICE_PORT: "443",
    });
    expect(kc.getCurrentCluster()?.server).toBe("https://[fd00:10:96::1]:443");
  });

  it("has no namespace when the file is missing", () => {
    const kc = kubeConfigFromFiles({ ...credentials, namespaceFile: join(dir, "absent") }, env);
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBeUndefined();
  });

  it("reads the files of the token volume in the sidecar", () => {
    expect(SIDECAR_KUBE_API_CREDENTIALS).toEqual({
      tokenFile: "/var/run/secrets/coordinator-ha/kube-api-token",
      caFile: "/var/run/secrets/coordinator-ha/ca.crt",
      namespaceFile: "/var/run/secrets/coordinator-ha/namespace",
    });
  });
});

describe("missing credentials", () => {
  it("are none when the address and the files are there", () => {
    expect(missingKubeApiCredentials(credentials, env)).toBeUndefined();
  });

  it("name the variables that are not set", () => {
    expect(missingKubeApiCredentials(credentials, {})).toBe(
      "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set",
    );
    expect(missingKubeApiCredentials(credentials, { KUBERNETES_SERVICE_HOST: "10.96.0.1" })).toBe(
      "KUBERNETES_SERVICE_PORT is not set",
    );
  });

  it("name the files that do not exist, and the volume that should hold them", () => {
    const absent = { ...credentials, tokenFile: join(dir, "no-token"), caFile: join(dir, "no-ca.crt") };
    expect(missingKubeApiCredentials(absent, env)).toBe(
      `${absent.tokenFile} and ${absent.caFile} do not exist (the coordinator-ha webhook puts them into the volume ${TOKEN_VOLUME})`,
    );
    expect(missingKubeApiCredentials({ ...credentials, tokenFile: absent.tokenFile }, env)).toMatch(
      /^\S+no-token does not exist \(the coordinator-ha webhook puts them into the volume coordinator-ha-token\)$/,
    );
  });
});

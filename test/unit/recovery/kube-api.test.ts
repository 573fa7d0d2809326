// The sidecar's Kubernetes API reads with the credential files of its token volume, against a
// real HTTPS server that stands in for the apiserver: the CA file verifies it, the token file
// is the bearer, and a token the kubelet renews is picked up.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { close, listen } from "../../../src/http/listen.ts";
import { discoverIssuer } from "../../../src/identity/index.ts";
import { TOKEN_VOLUME } from "../../../src/names.ts";
import {
  kubeApi,
  kubeApiIssuerDiscovery,
  missingKubeApiCredentials,
  SIDECAR_KUBE_API_CREDENTIALS,
  type KubeApiCredentials,
} from "../../../src/recovery/kube-api.ts";
import { createCa, issueServingCert } from "../../../webhook-certs/x509.ts";

const ISSUER = "https://kubernetes.default.svc.cluster.local";
const KEYS = { keys: [{ kty: "EC", kid: "k1", crv: "P-256", x: "x", y: "y" }] };

let dir: string;
let credentials: KubeApiCredentials;
let server: Server;
let env: Record<string, string>;
/** The Authorization header of each request the stand-in apiserver got. */
const authorizations: (string | undefined)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kube-api-"));
  credentials = {
    tokenFile: join(dir, "kube-api-token"),
    caFile: join(dir, "ca.crt"),
    namespaceFile: join(dir, "namespace"),
  };
  const ca = await createCa({ commonName: "kube-api test CA" });
  const serving = await issueServingCert(ca, { ips: ["127.0.0.1"] });
  writeFileSync(credentials.caFile, ca.certPem);
  writeFileSync(credentials.tokenFile, "first-token");
  writeFileSync(credentials.namespaceFile, "coordinators");
  server = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    authorizations.push(req.headers.authorization);
    if (req.url === "/.well-known/openid-configuration") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ issuer: ISSUER }));
    } else if (req.url === "/openid/v1/jwks") {
      // As the apiserver negotiates it: only application/jwk-set+json, else 406.
      const accept = req.headers.accept ?? "*/*";
      if (!/application\/jwk-set\+json|\*\/\*/.test(accept)) {
        res.writeHead(406, { "content-type": "text/plain" }).end("406: Not Acceptable");
        return;
      }
      res.writeHead(200, { "content-type": "application/jwk-set+json" }).end(JSON.stringify(KEYS));
    } else {
      res
        .writeHead(404, { "content-type": "application/json" })
        .end(JSON.stringify({ kind: "Status", message: `the server could not find ${req.url}` }));
    }
  });
  const port = await listen(server, 0, "127.0.0.1");
  env = { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(port) };
});

afterAll(async () => {
  await close(server);
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  authorizations.length = 0;
});

describe("the sidecar's Kubernetes API reads", () => {
  it("reach the apiserver at the service address, verified with the CA file, with the token file", async () => {
    const api = kubeApi(credentials, env);
    const discovery = kubeApiIssuerDiscovery(api);
    expect(await discoverIssuer(discovery)).toBe(ISSUER);
    expect(await discovery.keySet()).toEqual(KEYS);
    expect(authorizations).toEqual(["Bearer first-token", "Bearer first-token"]);
    expect(api.server).toBe(`https://127.0.0.1:${env["KUBERNETES_SERVICE_PORT"]}`);
  });

  it("pick up the token that the kubelet renews, at the next request", async () => {
    const api = kubeApi(credentials, env);
    await api.getJson("/.well-known/openid-configuration");
    writeFileSync(credentials.tokenFile, "renewed-token\n");
    await api.getJson("/.well-known/openid-configuration");
    expect(authorizations).toEqual(["Bearer first-token", "Bearer renewed-token"]);
    writeFileSync(credentials.tokenFile, "first-token");
  });

  it("refuse an apiserver that the CA file does not vouch for, before sending the token", async () => {
    const other = await createCa({ commonName: "another CA" });
    const caFile = join(dir, "other-ca.crt");
    writeFileSync(caFile, other.certPem);
    await expect(
      discoverIssuer(kubeApiIssuerDiscovery(kubeApi({ ...credentials, caFile }, env))),
    ).rejects.toThrow();
    expect(authorizations).toEqual([]);
  });

  it("name the path and the apiserver's answer when it is not 200", async () => {
    const api = kubeApi(credentials, env);
    await expect(api.getJson("/api/v1/namespaces/x/pods/y")).rejects.toThrow(
      "GET /api/v1/namespaces/x/pods/y: the apiserver answered 404: the server could not find /api/v1/namespaces/x/pods/y",
    );
    expect((await api.get("/api/v1/namespaces/x/pods/y")).status).toBe(404);
  });

  it("fail with the missing file's name when a credential file is absent", async () => {
    const api = kubeApi({ ...credentials, tokenFile: join(dir, "absent") }, env);
    await expect(api.getJson("/openid/v1/jwks")).rejects.toThrow(/absent/);
    expect(authorizations).toEqual([]);
  });

  it("put an IPv6 service host in brackets", () => {
    const api = kubeApi(credentials, {
      KUBERNETES_SERVICE_HOST: "fd00:10:96::1",
      KUBERNETES_SERVICE_PORT: "443",
    });
    expect(api.server).toBe("https://[fd00:10:96::1]:443");
  });

  it("can be made without the service address, and then fail each request", async () => {
    const api = kubeApi(credentials, {});
    await expect(api.getJson("/openid/v1/jwks")).rejects.toThrow();
    expect(authorizations).toEqual([]);
  });

  it("read the files of the token volume in the sidecar", () => {
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

// Who receives the state, tried as an attacker with `create pods` and `serviceaccounts/token`
// rights in the Coordinator's namespace, with real tokens from the real apiserver
// (TokenRequest, as `kubectl create token` and the kubelet make them) against the real peer API
// of coordinator-0, which holds the state. Only a live member of the StatefulSet gets it:
//
// - a bare pod named coordinator-5 with the Coordinator's service account, opted out of
//   injection and owned by nothing: 403, no state;
// - the token of a member that has since been deleted: 403, no state;
// - a 48-hour token bound to a live member: 401, no state;
// - and a real member still recovers: the pod that replaces the deleted one turns Ready.
//
// A member's own fresh token gets the state through the very same request: the refusals are
// not a broken request.
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestJson, type JsonResponse } from "../../../src/http/client.ts";
import { INJECT_ANNOTATION, PEER_PORT, PEER_TOKEN_AUDIENCE } from "../../../src/names.ts";
import { ephemeralKey, openBundle } from "../../../src/recovery/transfer.ts";
import { eventually } from "../kube.ts";
import { isReady, recovered, set } from "../workflow/coordinator.ts";
import { installWorkflow, type Workflow } from "./harness.ts";

describe("the peer API serves the state only to live members", () => {
  let w: Workflow;
  let core: CoreV1Api;

  beforeAll(async () => {
    w = await installWorkflow("e2e-peer-access");
    core = w.kc.makeApiClient(CoreV1Api);
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: "e2e-peer-access" }));
    // The user's set, on coordinator-0 (it must succeed: set fails otherwise).
    await set(w.sh, await w.serviceAddress("coordinator"), manifest, { check: true });
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 2");
    const wait = await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=2' --timeout=2m",
      { timeoutMs: 150_000, check: false },
    );
    if (wait.code !== 0) {
      // Why the second pod did not recover, in the words of everyone involved.
      for (const pod of ["coordinator-1", "coordinator-0"]) {
        await w.sh.run(`kubectl logs ${pod} -c coordinator-ha-recovery --tail 40`, { check: false });
      }
      await w.sh.run(`kubectl logs -n ${w.system} deployment/${w.release}-coordinator-ha-handler --tail 60`, {
        check: false,
      });
      throw new Error("coordinator-1 did not recover from coordinator-0; the logs are above");
    }
  }, 300_000);
  afterAll(async () => {
    await w?.cleanup();
  });

  /** A pod-bound token from the apiserver, as `kubectl create token --bound-object-kind Pod` makes it. */
  async function tokenOf(pod: V1Pod, expirationSeconds = 600): Promise<string> {
    const answer = await core.createNamespacedServiceAccountToken({
      namespace: w.namespace,
      name: pod.spec!.serviceAccountName!,
      body: {
        spec: {
          audiences: [PEER_TOKEN_AUDIENCE],
          expirationSeconds,
          boundObjectRef: {
            apiVersion: "v1",
            kind: "Pod",
            name: pod.metadata!.name!,
            uid: pod.metadata!.uid!,
          },
        },
      },
    });
    const token = answer.status?.token;
    if (!token) throw new Error(`the TokenRequest for ${pod.metadata!.name} returned no token`);
    return token;
  }

  /** POST /v1/state to coordinator-0's peer API, as any client in the cluster can. */
  async function fetchState(token: string) {
    const ip = (await w.pod("coordinator-0")).status!.podIP!;
    const key = await ephemeralKey();
    const res: JsonResponse = await requestJson({
      url: new URL(`https://${ip}:${PEER_PORT}/v1/state`),
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: { publicKey: key.publicJwk },
      // The attacker does not care whose certificate it is.
      insecure: true,
      timeoutMs: 15_000,
      maxResponseBytes: 1 << 20,
    });
    const body = (res.body ?? {}) as { error?: string; jwe?: string; digest?: string };
    console.log(`POST /v1/state -> ${res.status} ${body.error ?? `digest ${body.digest}`}`);
    return { status: res.status, body, key };
  }

  it("hands the state to a live member's own token (the request itself is sound)", async () => {
    const { status, body, key } = await fetchState(await tokenOf(await w.pod("coordinator-1")));
    expect(status).toBe(200);
    expect(body.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // openBundle recomputes the digest from what it decrypts.
    expect((await openBundle(body.jwe, key, body.digest!)).files.length).toBeGreaterThan(0);
  });

  it("refuses a bare pod that took a member's name and service account", async () => {
    const member = await w.pod("coordinator-0");
    const bare = await core.createNamespacedPod({
      namespace: w.namespace,
      body: {
        metadata: {
          name: "coordinator-5",
          // Selected by coordinator-ha (app.kubernetes.io/name), but not by the StatefulSet's
          // selector, which would adopt it (and, past its replicas, delete it).
          labels: { "app.kubernetes.io/name": "coordinator" },
          annotations: { [INJECT_ANNOTATION]: "false" },
        },
        spec: {
          serviceAccountName: member.spec!.serviceAccountName!,
          // It need not run: the apiserver binds a token to it all the same.
          nodeName: "no-such-node",
          containers: [{ name: "c", image: member.spec!.containers[0]!.image!, args: ["--help"] }],
        },
      },
    });
    expect(bare.metadata!.ownerReferences ?? []).toEqual([]);
    const { status, body } = await fetchState(await tokenOf(bare));
    expect(status).toBe(403);
    expect(body.error).toMatch(/not a live member .*not controlled by StatefulSet coordinator/);
    expect(body).not.toHaveProperty("jwe");
  });

  it("refuses a 48-hour token of a live member", async () => {
    const { status, body } = await fetchState(await tokenOf(await w.pod("coordinator-1"), 48 * 3600));
    expect(status).toBe(401);
    expect(body.error).toMatch(/token lives 172800 s/);
    expect(body).not.toHaveProperty("jwe");
  });

  it("refuses the token of a deleted member, and the member's replacement recovers", async () => {
    const old = await w.pod("coordinator-1");
    const token = await tokenOf(old);
    await core.deleteNamespacedPod({ namespace: w.namespace, name: "coordinator-1", gracePeriodSeconds: 0 });
    // The StatefulSet recreates coordinator-1 under a new uid; the old pod is gone either way.
    await eventually(
      "the old coordinator-1 to be gone",
      async () => {
        const now = await w.pod("coordinator-1").catch(() => undefined);
        return now?.metadata?.uid !== old.metadata!.uid ? true : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const { status, body } = await fetchState(token);
    expect(status).toBe(403);
    expect(body.error).toMatch(/not a live member .*(does not exist|has been replaced)/);
    expect(body).not.toHaveProperty("jwe");

    const replacement = await eventually(
      "the new coordinator-1 to recover and turn Ready",
      async () => {
        const pod = await w.pod("coordinator-1");
        return isReady(pod) && recovered(pod)?.status === "True" ? pod : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    expect(replacement.metadata!.uid).not.toBe(old.metadata!.uid);
    expect(recovered(replacement)?.reason).toBe("RecoveredFromPeer");
  });
});

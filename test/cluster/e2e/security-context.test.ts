// The charts' securityContexts, enforced by the real runtime, as on a user's cluster: the app
// container runs as a user of its own (1000, not the chart's 65532) with a read-only root file
// system, the recovery sidecar too, and it reads its projected tokens. The state volume is a
// memory emptyDir: a tmpfs whose root is root-owned and sticky (1777), where only a file's owner
// may replace it. The webhook runs the sidecar as the app's user (src/webhook/sidecar-user.ts),
// so that the sidecar can swap an update over the files that the app wrote, and the app reads
// what the sidecar wrote: with the chart's fsGroup, and without any.
import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ownerKeyDigest } from "../../../src/coordinator/owner-key.ts";
import { DEFAULT_STATE_DIR, Reason, SIDECAR_NAME, TOKEN_DIR } from "../../../src/names.ts";
import { recovered, sameKey, set, verify, type CoordinatorState } from "../workflow/coordinator.ts";
import { installWorkflow, type Workflow } from "./harness.ts";

const APP = "coordinator";
const USER = "--set podSecurityContext.runAsUser=1000 --set podSecurityContext.runAsGroup=1000";
const owner = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const manifest = (policy: string) =>
  JSON.stringify({ policy, workloadOwnerKeyDigests: [ownerKeyDigest(owner)] });

describe.each([
  { name: "with the chart's fsGroup", args: USER, fsGroup: "65532" },
  { name: "without an fsGroup", args: `${USER} --set podSecurityContext.fsGroup=null`, fsGroup: "none" },
])("an app that runs as uid 1000, $name", ({ args, fsGroup }) => {
  let w: Workflow;
  let state: CoordinatorState;

  beforeAll(async () => {
    w = await installWorkflow("e2e-secctx", { coordinatorArgs: args });
  }, 240_000);
  afterAll(async () => {
    await w?.cleanup();
  });
  beforeEach(({ onTestFailed }) =>
    onTestFailed(async () => {
      for (const pod of ["coordinator-0", "coordinator-1"])
        await w.sh.run(`kubectl logs ${pod} -c ${SIDECAR_NAME} --tail=40`, { check: false });
    }),
  );

  const exec = (pod: string, container: string, script: string) =>
    w.sh.run(`kubectl exec ${pod} -c ${container} -- sh -c '${script}'`, { check: false });

  it("runs the app and the sidecar as the app's user, with read-only root file systems", async () => {
    await w.sh.run("kubectl wait pod/coordinator-0 --for=jsonpath='{.status.phase}'=Running --timeout=2m", {
      timeoutMs: 150_000,
    });
    const podContext = await w.sh.run(
      "kubectl get pod coordinator-0 -o jsonpath='{.spec.securityContext.fsGroup}'",
    );
    expect(podContext.stdout.trim() || "none").toBe(fsGroup);
    for (const c of [APP, SIDECAR_NAME]) {
      expect((await exec("coordinator-0", c, "id -u")).stdout.trim(), c).toBe("1000");
      const write = await exec("coordinator-0", c, "touch /probe");
      expect(write.code, c).not.toBe(0);
      expect(write.output, c).toMatch(/Read-only file system/);
    }
    // The volume as the kubelet made it: sticky, whatever the fsGroup.
    expect((await exec("coordinator-0", APP, `stat -c %A ${DEFAULT_STATE_DIR}`)).stdout.trim()).toMatch(/t$/);
    // The sidecar reads its projected tokens; the app has none mounted.
    const tokens = await exec(
      "coordinator-0",
      SIDECAR_NAME,
      `ls ${TOKEN_DIR} && head -c 3 ${TOKEN_DIR}/token`,
    );
    expect(tokens.code).toBe(0);
    expect(tokens.stdout).toContain("eyJ");
    expect((await exec("coordinator-0", APP, `ls ${TOKEN_DIR}`)).code).not.toBe(0);
  });

  it("the app's set writes the state the sidecar serves, and a peer's app reads what its sidecar recovered", async () => {
    state = (await set(w.sh, await w.serviceAddress("coordinator"), w.files.write("v1.json", manifest("v1"))))
      .state!;
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 2");
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=2' --timeout=2m",
      {
        timeoutMs: 150_000,
      },
    );
    expect(recovered(await w.pod("coordinator-1"))).toMatchObject({
      status: "True",
      reason: Reason.RecoveredFromPeer,
    });
    const { state: got } = await verify(w.sh, await w.podAddress("coordinator-1"));
    expect(sameKey(got!.publicKey, state.publicKey)).toBe(true);
  });

  it("an update is swapped in over the files the app wrote, on every replica", async () => {
    // coordinator-0's state is the app's own files; the sidecar must replace them.
    await exec("coordinator-0", APP, `ls -lnA ${DEFAULT_STATE_DIR}`);
    const keyFile = w.files.write("owner.pem", owner.export({ format: "pem", type: "sec1" }).toString());
    const updated = await w.sh.run(
      `coordinator-ha set -c ${await w.podAddress("coordinator-0")} -m ${w.files.write("v2.json", manifest("v2"))} --workload-owner-key ${keyFile}`,
      { timeoutMs: 120_000 },
    );
    const digest = /state digest: (sha256:[0-9a-f]{64})/.exec(updated.stdout)?.[1];
    expect(digest).toBeDefined();
    expect(digest).not.toBe(state.digest);
    for (const pod of ["coordinator-0", "coordinator-1"]) {
      let seen: string | undefined;
      for (let i = 0; i < 60 && seen !== digest; i++) {
        seen = (await verify(w.sh, await w.podAddress(pod), { check: false })).state?.digest;
        if (seen !== digest) await new Promise((r) => setTimeout(r, 500));
      }
      expect(seen, pod).toBe(digest);
      // Who owns what now: the app's user, in both pods.
      await exec(pod, APP, `ls -lnA ${DEFAULT_STATE_DIR}`);
    }
  });
});

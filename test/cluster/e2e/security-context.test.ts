// The charts' securityContexts, enforced by the real runtime, as on a user's cluster: the
// recovery sidecar runs as 65532 with a read-only root file system and reads its projected
// tokens; the app container runs as another user (1000) and shares the memory state volume with
// it. The app writes the first state (set), the sidecar serves it to a peer and writes the
// recovered one, which the peer's app reads: both directions across the two users.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_STATE_DIR, Reason, SIDECAR_NAME, TOKEN_DIR } from "../../../src/names.ts";
import { recovered, sameKey, set, verify, type CoordinatorState } from "../workflow/coordinator.ts";
import { installWorkflow, type Workflow } from "./harness.ts";

const APP = "coordinator";

// The chart's fsGroup (65532) is what lets the two users share the volume. Without any fsGroup
// (the volume is then a root-owned sticky tmpfs) the sidecar's proposal of the app's first state
// expires unheld and the gate stays False: an open gap, not covered here.
const args = "--set podSecurityContext.runAsUser=1000 --set podSecurityContext.runAsGroup=1000";

describe("an app that runs as uid 1000 beside the sidecar (uid 65532), with the chart's fsGroup", () => {
  let w: Workflow;
  let state: CoordinatorState;

  beforeAll(async () => {
    w = await installWorkflow("e2e-secctx", { coordinatorArgs: args });
  }, 240_000);
  afterAll(async () => {
    await w?.cleanup();
  });

  const exec = (pod: string, container: string, script: string) =>
    w.sh.run(`kubectl exec ${pod} -c ${container} -- sh -c '${script}'`, { check: false });

  it("runs each container as its own user, with read-only root file systems", async () => {
    await w.sh.run("kubectl wait pod/coordinator-0 --for=jsonpath='{.status.phase}'=Running --timeout=2m", {
      timeoutMs: 150_000,
    });
    expect((await exec("coordinator-0", APP, "id -u")).stdout.trim()).toBe("1000");
    expect((await exec("coordinator-0", SIDECAR_NAME, "id -u")).stdout.trim()).toBe("65532");
    for (const c of [APP, SIDECAR_NAME]) {
      const write = await exec("coordinator-0", c, "touch /probe");
      expect(write.code, c).not.toBe(0);
      expect(write.output, c).toMatch(/Read-only file system/);
    }
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
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: "e2e-secctx" }));
    state = (await set(w.sh, await w.serviceAddress("coordinator"), manifest)).state!;
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
    // Who wrote what: the app (1000) on coordinator-0, the sidecar (65532) on coordinator-1.
    await exec("coordinator-0", APP, `ls -lnR ${DEFAULT_STATE_DIR}`);
    await exec("coordinator-1", APP, `ls -lnR ${DEFAULT_STATE_DIR}`);
  });
});

// Where the update faults start from: the workload owner's key on disk, the first state set
// with a manifest that lists the key (so that `set --workload-owner-key` may update it), and
// three Ready replicas.
import type { KeyObject } from "node:crypto";
import type { Workflow } from "../e2e/harness.ts";
import { set } from "../workflow/coordinator.ts";

export async function setOwnedAndScaleToThree(
  w: Workflow,
  owner: KeyObject,
  firstManifest: string,
): Promise<{ keyFile: string; publicKey: string }> {
  const keyFile = w.files.write("owner.pem", owner.export({ format: "pem", type: "sec1" }).toString());
  const first = await set(
    w.sh,
    await w.serviceAddress("coordinator"),
    w.files.write("first.json", firstManifest),
  );
  await w.sh.run("kubectl scale statefulset/coordinator --replicas 3");
  await w.sh.run(
    "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=4m",
    {
      timeoutMs: 260_000,
    },
  );
  return { keyFile, publicKey: first.state!.publicKey };
}

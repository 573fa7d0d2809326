// The smallest proof that an installed coordinator-ha works: the user's `set` on
// coordinator-0 of the reference chart, then a scale to 2, and coordinator-1 turns Ready only
// by recovering from coordinator-0. Shared by the chart tests that install the chart in
// different shapes.
import { run, runOk, type K8sObject } from "../../charts/helm.ts";
import { eventually } from "../kube.ts";
import { paths } from "../launcher/config.ts";

const env = { KUBECONFIG: paths.kubeconfig };

export interface RecoveredPodStatus {
  conditions: { type: string; status: string; reason?: string }[];
}

/**
 * Sets coordinator-0 in `namespace` with a manifest of `policy`, scales the StatefulSet to 2
 * and waits until both are Ready. On a timeout it throws with coordinator-1's description and
 * whatever `diagnostics` adds. Returns coordinator-1's status.
 */
export async function setThenRecoverSecondReplica(
  namespace: string,
  policy: string,
  diagnostics: () => string = () => "",
): Promise<RecoveredPodStatus> {
  const getPod = (name: string) =>
    JSON.parse(runOk("kubectl", ["get", "pod", "-n", namespace, name, "-o", "json"], { env })) as K8sObject;
  const ip = await eventually(
    "coordinator-0's pod IP",
    async () => {
      const r = run("kubectl", ["get", "pod", "-n", namespace, "coordinator-0", "-o", "json"], { env });
      return r.status === 0
        ? ((JSON.parse(r.stdout) as K8sObject).status.podIP as string | undefined)
        : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  // The host reaches pod IPs; the app listens once its sidecar, answered by the handler, lets
  // it start.
  await eventually(
    "the user's set on coordinator-0",
    async () => {
      const res = await fetch(`http://${ip}:1313/v1/manifest`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ manifest: { policy } }),
      });
      return res.status === 201 ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 1000 },
  );
  runOk("kubectl", ["scale", "-n", namespace, "statefulset/coordinator", "--replicas", "2"], { env });
  const wait = run(
    "kubectl",
    [
      "wait",
      "-n",
      namespace,
      "statefulset/coordinator",
      "--for=jsonpath={.status.readyReplicas}=2",
      "--timeout=90s",
    ],
    { env },
  );
  if (wait.status !== 0) {
    const describe = run("kubectl", ["describe", "pod", "-n", namespace, "coordinator-1"], { env }).stdout;
    throw new Error(`coordinator-1 did not become Ready:\n${wait.stderr}\n${describe}\n${diagnostics()}`);
  }
  return getPod("coordinator-1").status as RecoveredPodStatus;
}

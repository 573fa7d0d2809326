// What every end-to-end test starts from: coordinator-ha and the reference Coordinator
// installed with the real helm into namespaces of their own, and a shell whose kubectl points at
// the Coordinator's namespace, so that the tests type the operator guide's commands verbatim.
import { randomBytes } from "node:crypto";
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { COORDINATOR_API_PORT } from "../../../src/names.ts";
import { selects, tool } from "../../charts/helm.ts";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";
import { UserFiles } from "../workflow/coordinator.ts";
import { CLI, Shell, type CommandResult } from "../workflow/shell.ts";

export interface Workflow {
  /** kubectl (namespace: the Coordinator's), helm and coordinator-ha, each command logged. */
  sh: Shell;
  kc: KubeConfig;
  /** The Coordinator's namespace. */
  namespace: string;
  /** coordinator-ha's namespace and release. */
  system: string;
  release: string;
  webhookDeployment: string;
  /** The user's files: manifests, expected keys. */
  files: UserFiles;
  pod(name: string): Promise<V1Pod>;
  /** host:port of a pod's user API: the host reaches pod IPs. */
  podAddress(name: string): Promise<string>;
  /** host:port of a Service's ClusterIP: the host reaches it through a node's kube-proxy rules. */
  serviceAddress(name: string): Promise<string>;
  cleanup(): Promise<void>;
}

/** Logs each command and its output under the test, as a user would have seen it. */
const log = {
  command: () => undefined,
  output: () => undefined,
  done: (r: CommandResult) =>
    console.log(
      `$ ${r.line}   [${(r.ms / 1000).toFixed(1)}s${r.code ? `, exit ${r.code}` : ""}]\n${r.output}`,
    ),
};

/**
 * `coordinatorArgs`: more arguments of `helm install coordinator charts/coordinator` (values);
 * `chartArgs`: of `helm install <release> charts/coordinator-ha`.
 */
export async function installWorkflow(
  prefix: string,
  opts: { coordinatorArgs?: string; chartArgs?: string } = {},
): Promise<Workflow> {
  const admin = kubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const namespace = await createNamespace(admin, prefix);
  const system = await createNamespace(admin, `${prefix}-system`);
  const release = `cha-${randomBytes(3).toString("hex")}`;
  const files = new UserFiles();

  // The admin's kubeconfig with the Coordinator's namespace as its context's default.
  const kc = kubeConfig();
  kc.contexts = kc.contexts.map((c) => (c.name === kc.currentContext ? { ...c, namespace } : c));
  const kubeconfig = files.write("kubeconfig", kc.exportConfig());
  const sh = new Shell({
    programs: { kubectl: [tool("kubectl")], helm: [tool("helm")], "coordinator-ha": CLI },
    env: { KUBECONFIG: kubeconfig },
    echo: log,
  });

  const cleanup = async () => {
    // The release's webhook configuration and ClusterRole are cluster-wide: uninstall them.
    await sh.run(`helm uninstall ${release} --namespace ${system} --wait`, { check: false });
    await deleteNamespace(admin, namespace);
    await deleteNamespace(admin, system);
    files.remove();
  };

  try {
    await refuseForeignWebhooks(sh, namespace);
    // Confined to the test's namespace: other test files create Coordinator pods too.
    const only = JSON.stringify({
      matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [namespace] }],
    });
    await sh.run(
      `helm install ${release} charts/coordinator-ha --namespace ${system} --wait --timeout 3m ` +
        `--set-json 'webhook.namespaceSelector=${only}' ${opts.chartArgs ?? ""}`.trim(),
      { timeoutMs: 200_000 },
    );
    await sh.run(`helm install coordinator charts/coordinator ${opts.coordinatorArgs ?? ""}`.trim());
    // helm install returns before the StatefulSet controller has created the first pod, and a
    // `kubectl wait` on a pod that does not exist yet fails at once.
    await sh.run("kubectl wait pod/coordinator-0 --for=create --timeout=1m", { timeoutMs: 70_000 });
  } catch (err) {
    await cleanup();
    throw err;
  }

  const pod = (name: string) => core.readNamespacedPod({ namespace, name });
  return {
    sh,
    kc,
    namespace,
    system,
    release,
    webhookDeployment: `${release}-coordinator-ha-webhook`,
    files,
    pod,
    podAddress: async (name) => {
      const ip = await eventually(`the pod IP of ${name}`, async () => (await pod(name)).status?.podIP);
      return `${ip}:${COORDINATOR_API_PORT}`;
    },
    serviceAddress: async (name) => {
      const svc = await core.readNamespacedService({ namespace, name });
      return `${svc.spec!.clusterIP}:${COORDINATOR_API_PORT}`;
    },
    cleanup,
  };
}

/**
 * A second coordinator-ha release that also injects pods in this namespace (say, a demo left
 * running with --keep) would make two handlers fight over one gate: say so instead of failing
 * somewhere later.
 */
async function refuseForeignWebhooks(sh: Shell, namespace: string): Promise<void> {
  type Config = {
    metadata: { name: string };
    webhooks?: { name: string; namespaceSelector?: Parameters<typeof selects>[0] }[];
  };
  const configs = await sh.json<{ items: Config[] }>("kubectl get mutatingwebhookconfigurations -o json");
  const labels = { "kubernetes.io/metadata.name": namespace };
  const foreign = configs.items.filter((c) =>
    (c.webhooks ?? []).some(
      (w) => w.name === "inject.coordinator-ha.io" && selects(w.namespaceSelector ?? {}, labels),
    ),
  );
  if (foreign.length > 0) {
    throw new Error(
      `the coordinator-ha webhook configuration ${foreign.map((c) => c.metadata.name).join(", ")} ` +
        `already injects Coordinator pods in every new namespace (a demo kept with --keep?). ` +
        `The end-to-end tests install their own release: uninstall that one first (helm uninstall).`,
    );
  }
}

// `coordinator-ha status` at run time: the user's kubeconfig, one read of the cluster, the
// report, and the exit code: 0 every set shown is healthy, 1 one is not (or the StatefulSet
// asked for does not exist), 2 the cluster could not be read.
import { KubeConfig } from "@kubernetes/client-node";
import { readCluster, type ClusterView } from "./read.ts";
import { setStatus, type SetStatus } from "./report.ts";
import { renderTables } from "./table.ts";

export const StatusExit = { Healthy: 0, Unhealthy: 1, CannotRead: 2 } as const;

export interface StatusOptions {
  namespace?: string;
  allNamespaces?: boolean;
  statefulSet?: string;
  output: "table" | "json";
  kubeconfig?: string;
  context?: string;
}

export interface Output {
  out(text: string): void;
  err(line: string): void;
}

export async function runStatus(
  opts: StatusOptions,
  io: Output,
  now: () => Date = () => new Date(),
  read: (kc: KubeConfig, namespace: string | undefined) => Promise<ClusterView> = (kc, namespace) =>
    readCluster(kc, { namespace, ...(opts.statefulSet ? { statefulSet: opts.statefulSet } : {}) }),
): Promise<number> {
  let view: ClusterView;
  let namespace: string | undefined;
  try {
    const kc = new KubeConfig();
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    if (opts.context) kc.setCurrentContext(opts.context);
    if (!kc.getCurrentCluster())
      throw new Error("no cluster in the kubeconfig: set KUBECONFIG or pass --kubeconfig");
    namespace = opts.allNamespaces ? undefined : (opts.namespace ?? contextNamespace(kc));
    view = await read(kc, namespace);
  } catch (err) {
    io.err(`error: cannot read the cluster: ${describe(err)}`);
    return StatusExit.CannotRead;
  }
  for (const warning of view.warnings) io.err(`warning: ${warning}`);

  const sets: SetStatus[] = view.statefulSets.map((sts) =>
    setStatus(sts, view.pods, view.heads.get(`${sts.namespace}/${sts.name}`)),
  );
  const healthy = sets.every((s) => s.healthy);
  if (opts.output === "json") {
    io.out(`${JSON.stringify({ healthy: healthy && sets.length > 0, statefulSets: sets }, null, 2)}\n`);
  } else if (sets.length > 0) {
    io.out(renderTables(sets, now()));
  }
  if (sets.length === 0) {
    const where = namespace === undefined ? "any namespace" : `namespace ${namespace}`;
    if (opts.statefulSet) {
      io.err(`no StatefulSet ${opts.statefulSet} in ${where}`);
      return StatusExit.Unhealthy;
    }
    io.err(
      `no StatefulSet with coordinator-ha pods (readiness gate coordinator-ha.io/recovered) in ${where}`,
    );
    return StatusExit.Healthy;
  }
  return healthy ? StatusExit.Healthy : StatusExit.Unhealthy;
}

function contextNamespace(kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || "default";
}

function describe(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      const message = (JSON.parse(body) as { message?: string }).message;
      if (message) return message;
    } catch {
      // not JSON: the error's own message below
    }
  }
  return err instanceof Error ? err.message : String(err);
}

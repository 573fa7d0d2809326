// `inject --from-cluster`: the installed webhook's own settings, so that what `inject` writes
// is what that webhook would inject. The MutatingWebhookConfiguration names the webhook's
// Service and its objectSelector; the chart names the webhook's Deployment as its Service,
// and the Deployment's args carry the sidecar flags. The handler CA is the configuration's
// caBundle: the chart signs the webhook and the handler with one CA (every tls.mode).
import type { V1Deployment, V1LabelSelector, V1MutatingWebhookConfiguration } from "@kubernetes/client-node";
import { DEFAULT_STATE_DIR } from "../names.ts";
import { PULL_POLICIES } from "../webhook/config.ts";
import {
  SIDECAR_PROBES,
  type InjectionParams,
  type PullPolicy,
  type SidecarProbes,
} from "../webhook/sidecar.ts";

export const WEBHOOK_NAME = "inject.coordinator-ha.io";

export interface InstalledWebhook {
  params: InjectionParams;
  /** The objectSelector in `kubectl get -l` syntax. */
  selector: string;
  /** `<configuration>` and `<namespace>/<service>`, for the user. */
  source: string;
}

/** The webhook entry of coordinator-ha among the cluster's configurations, or why there is none. */
export function findWebhook(configurations: V1MutatingWebhookConfiguration[]): {
  configuration: V1MutatingWebhookConfiguration;
  service: { namespace: string; name: string };
} {
  const found = configurations.flatMap((configuration) =>
    (configuration.webhooks ?? [])
      .filter((w) => w.name === WEBHOOK_NAME && w.clientConfig.service)
      .map(() => configuration),
  );
  if (found.length === 0) {
    throw new Error(
      `no MutatingWebhookConfiguration in this cluster has the webhook ${WEBHOOK_NAME}: is coordinator-ha installed? Give --sidecar-image and --handler-url instead`,
    );
  }
  if (found.length > 1) {
    const names = found.map((c) => c.metadata?.name).join(", ");
    throw new Error(`several webhook configurations have ${WEBHOOK_NAME} (${names}); there should be one`);
  }
  const configuration = found[0]!;
  const service = configuration.webhooks!.find((w) => w.name === WEBHOOK_NAME)!.clientConfig.service!;
  return { configuration, service: { namespace: service.namespace, name: service.name } };
}

/** The injection settings of an installed webhook: its configuration and its Deployment. */
export function installedWebhook(
  configuration: V1MutatingWebhookConfiguration,
  deployment: V1Deployment,
): InstalledWebhook {
  const webhook = configuration.webhooks?.find((w) => w.name === WEBHOOK_NAME);
  if (!webhook) throw new Error(`${configuration.metadata?.name} has no webhook ${WEBHOOK_NAME}`);
  const container = deployment.spec?.template.spec?.containers.find((c) =>
    (c.args ?? []).includes("webhook"),
  );
  const where = `deployment ${deployment.metadata?.namespace}/${deployment.metadata?.name}`;
  if (!container) throw new Error(`${where} runs no container with \`coordinator-ha webhook\``);
  const flag = (name: string): string | undefined => {
    const args = container.args ?? [];
    const at = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    if (at < 0) return undefined;
    const arg = args[at]!;
    return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[at + 1];
  };
  const image = flag("sidecar-image");
  const handlerUrl = flag("handler-url");
  if (!image || !handlerUrl) throw new Error(`${where} has no --sidecar-image or --handler-url`);
  const pullPolicy = flag("sidecar-image-pull-policy");
  if (pullPolicy !== undefined && !PULL_POLICIES.includes(pullPolicy as PullPolicy)) {
    throw new Error(`${where} has --sidecar-image-pull-policy ${JSON.stringify(pullPolicy)}`);
  }
  const probes = flag("sidecar-probes") ?? "http";
  if (!SIDECAR_PROBES.includes(probes as SidecarProbes)) {
    throw new Error(`${where} has --sidecar-probes ${JSON.stringify(probes)}`);
  }
  const caBundle = webhook.clientConfig.caBundle;
  const handlerCa =
    flag("handler-ca-file") !== undefined && caBundle ? Buffer.from(caBundle, "base64").toString("utf8") : "";
  return {
    params: {
      image,
      imagePullPolicy: pullPolicy as PullPolicy | undefined,
      handlerUrl,
      handlerCa,
      stateDir: flag("state-dir") ?? DEFAULT_STATE_DIR,
      probes: probes as SidecarProbes,
    },
    selector: selectorString(webhook.objectSelector ?? {}),
    source: `${configuration.metadata?.name} (${where})`,
  };
}

/** A LabelSelector object in the string syntax of `kubectl get -l`. */
export function selectorString(selector: V1LabelSelector): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const r of selector.matchExpressions ?? []) {
    const values = (r.values ?? []).join(",");
    if (r.operator === "In") terms.push(`${r.key} in (${values})`);
    else if (r.operator === "NotIn") terms.push(`${r.key} notin (${values})`);
    else if (r.operator === "Exists") terms.push(r.key);
    else if (r.operator === "DoesNotExist") terms.push(`!${r.key}`);
    else
      throw new Error(
        `objectSelector operator ${JSON.stringify(r.operator)} is not a label selector operator`,
      );
  }
  return terms.join(",");
}

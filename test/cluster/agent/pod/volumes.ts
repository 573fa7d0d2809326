// A pod's volumes, materialized on the host under <state dir>/pods/<uid>/volumes/<name>,
// and bind-mounted into each container's private mount namespace by the container runner.
//   emptyDir              a directory; with medium Memory a tmpfs, mounted once per pod so
//                         that all its containers share it (the recovery sidecar and the app
//                         exchange their state through one)
//   configMap, downwardAPI  files written atomically, refreshed while the pod runs
//   secret, projected     the same, on a tmpfs as the kubelet keeps them (never on disk);
//                         projected serviceAccountToken sources are TokenRequests bound to
//                         the pod, renewed at 80% of their lifetime
//   hostPath              the host path itself
// Volume types that need a storage system (persistentVolumeClaim, csi, ...) are refused
// with a FailedMount reason.
import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ConfigMap, Container, Pod, Secret } from "../kube/wire.ts";
import { run } from "../host/exec.ts";
import { apiErrorMessage } from "../kube/errors.ts";
import type { FileProjection } from "./atomic-writer.ts";
import { writeAtomically } from "./atomic-writer.ts";
import { fieldRefValue, resourceFieldValue, type EnvSources } from "./env.ts";
import { parseQuantity } from "./quantity.ts";
import type { TokenManager } from "./tokens.ts";

type Volume = NonNullable<NonNullable<Pod["spec"]>["volumes"]>[number];
type KeyToPath = { key: string; path: string; mode?: number };

/** A volume that cannot be set up; the pod waits (ContainerCreating) and retries. */
export class VolumeError extends Error {
  readonly volume: string;
  constructor(volume: string, message: string) {
    super(`MountVolume.SetUp failed for volume "${volume}" : ${message}`);
    this.volume = volume;
  }
}

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface VolumeSources {
  getConfigMap(namespace: string, name: string): Promise<ConfigMap | null>;
  getSecret(namespace: string, name: string): Promise<Secret | null>;
  tokens: TokenManager;
  hostIP: string;
  allocatable: EnvSources["allocatable"];
}

const DEFAULT_MODE = 0o644;

function sizeOption(limit: string | number | undefined): string[] {
  return limit === undefined ? [] : [`size=${Math.floor(parseQuantity(limit))}`];
}

export class PodVolumes {
  private readonly pod: Pod;
  private readonly dir: string;
  private readonly src: VolumeSources;
  /** Host paths of the volumes, by name. */
  private readonly paths = new Map<string, string>();
  /** Mount points the agent mounted on the host (tmpfs), to unmount on teardown. */
  private readonly mounted: string[] = [];

  constructor(pod: Pod, podDir: string, src: VolumeSources) {
    this.pod = pod;
    this.dir = join(podDir, "volumes");
    this.src = src;
  }

  private get namespace(): string {
    return this.pod.metadata?.namespace ?? "";
  }

  /** Creates every volume; idempotent, so a failed setup is retried by calling it again. */
  async setUp(): Promise<void> {
    for (const v of this.pod.spec?.volumes ?? []) {
      if (!this.paths.has(v.name)) await this.create(v);
      await this.populate(v);
    }
  }

  /** Rewrites the content of configMap, secret, downwardAPI and projected volumes. */
  async refresh(): Promise<void> {
    for (const v of this.pod.spec?.volumes ?? []) if (this.paths.has(v.name)) await this.populate(v);
  }

  private async mountTmpfs(path: string, options: string[]): Promise<void> {
    await mkdir(path, { recursive: true });
    const opts = ["mode=0777", ...options].join(",");
    await run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path]);
    this.mounted.push(path);
  }

  private async create(v: Volume): Promise<void> {
    const path = join(this.dir, v.name);
    if (v.emptyDir) {
      if (v.emptyDir.medium === "Memory") await this.mountTmpfs(path, sizeOption(v.emptyDir.sizeLimit));
      else await mkdir(path, { recursive: true, mode: 0o777 });
    } else if (v.secret || v.projected) {
      await this.mountTmpfs(path, []);
    } else if (v.configMap || v.downwardAPI) {
      await mkdir(path, { recursive: true });
    } else if (v.hostPath) {
      this.paths.set(v.name, await this.hostPath(v.name, v.hostPath.path, v.hostPath.type ?? ""));
      return;
    } else {
      const kind = Object.keys(v).find((k) => k !== "name") ?? "unknown";
      throw new VolumeError(v.name, `the node agent does not support ${kind} volumes`);
    }
    this.paths.set(v.name, path);
  }

  private async hostPath(volume: string, path: string, type: string): Promise<string> {
    const info = await stat(path).catch(() => undefined);
    if (type === "DirectoryOrCreate" && !info) await mkdir(path, { recursive: true, mode: 0o755 });
    else if (type === "FileOrCreate" && !info) await writeFile(path, "", { mode: 0o644 });
    else if (type === "Directory" && !info?.isDirectory())
      throw new VolumeError(volume, `hostPath type check failed: ${path} is not a directory`);
    else if (type === "File" && !info?.isFile())
      throw new VolumeError(volume, `hostPath type check failed: ${path} is not a file`);
    return path;
  }

  private async configMap(volume: string, name: string, optional?: boolean): Promise<ConfigMap | undefined> {
    const cm = await this.src.getConfigMap(this.namespace, name);
    if (!cm && !optional) throw new VolumeError(volume, `configmap "${name}" not found`);
    return cm ?? undefined;
  }

  private async secret(volume: string, name: string, optional?: boolean): Promise<Secret | undefined> {
    const s = await this.src.getSecret(this.namespace, name);
    if (!s && !optional) throw new VolumeError(volume, `secret "${name}" not found`);
    return s ?? undefined;
  }

  /** Files of a ConfigMap or Secret: all keys, or the listed items. */
  private keysToFiles(
    volume: string,
    kind: "configmap" | "secret",
    data: Record<string, Buffer>,
    items: readonly KeyToPath[] | undefined,
    mode: number,
    optional: boolean | undefined,
    out: Map<string, FileProjection>,
  ): void {
    if (!items?.length) {
      for (const [k, v] of Object.entries(data)) out.set(k, { data: v, mode });
      return;
    }
    for (const item of items) {
      const value = data[item.key];
      if (value === undefined) {
        if (optional) continue;
        throw new VolumeError(
          volume,
          `${kind} references non-existent ${kind === "configmap" ? "config" : "secret"} key: ${item.key}`,
        );
      }
      out.set(item.path, { data: value, mode: item.mode ?? mode });
    }
  }

  private configMapData(cm: ConfigMap | undefined): Record<string, Buffer> {
    const out: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(cm?.data ?? {})) out[k] = Buffer.from(v);
    for (const [k, v] of Object.entries(cm?.binaryData ?? {})) out[k] = Buffer.from(v, "base64");
    return out;
  }

  private secretData(s: Secret | undefined): Record<string, Buffer> {
    return Object.fromEntries(Object.entries(s?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]));
  }

  private downwardFiles(
    items: NonNullable<NonNullable<Volume["downwardAPI"]>["items"]>,
    mode: number,
    out: Map<string, FileProjection>,
  ): void {
    const container: Container = this.pod.spec?.containers[0] ?? { name: "" };
    for (const item of items) {
      let value = "";
      if (item.fieldRef)
        value = fieldRefValue(this.pod, item.fieldRef.fieldPath, { podIPs: [], hostIP: this.src.hostIP });
      else if (item.resourceFieldRef)
        value = resourceFieldValue(this.pod, container, item.resourceFieldRef, this.src.allocatable);
      out.set(item.path, { data: Buffer.from(value), mode: item.mode ?? mode });
    }
  }

  private async populate(v: Volume): Promise<void> {
    const files = await this.files(v);
    if (files) await writeAtomically(this.paths.get(v.name)!, files);
  }

  /**
   * The files of a configMap, secret, downwardAPI or projected volume, by path; undefined for
   * the other types. A projected volume takes its files from every source in order, whatever
   * the volume's name: identity tokens for several audiences, a token for the apiserver's own
   * (no audience), a ConfigMap and the downward API side by side, as the webhook's
   * coordinator-ha-token volume has them.
   */
  async files(v: Volume): Promise<Map<string, FileProjection> | undefined> {
    const files = new Map<string, FileProjection>();
    if (v.configMap) {
      const mode = v.configMap.defaultMode ?? DEFAULT_MODE;
      const cm = await this.configMap(v.name, v.configMap.name ?? "", v.configMap.optional);
      this.keysToFiles(
        v.name,
        "configmap",
        this.configMapData(cm),
        v.configMap.items,
        mode,
        v.configMap.optional,
        files,
      );
    } else if (v.secret) {
      const mode = v.secret.defaultMode ?? DEFAULT_MODE;
      const s = await this.secret(v.name, v.secret.secretName ?? "", v.secret.optional);
      this.keysToFiles(v.name, "secret", this.secretData(s), v.secret.items, mode, v.secret.optional, files);
    } else if (v.downwardAPI) {
      this.downwardFiles(v.downwardAPI.items ?? [], v.downwardAPI.defaultMode ?? DEFAULT_MODE, files);
    } else if (v.projected) {
      const mode = v.projected.defaultMode ?? DEFAULT_MODE;
      for (const source of v.projected.sources ?? []) {
        if (source.configMap) {
          const cm = await this.configMap(v.name, source.configMap.name ?? "", source.configMap.optional);
          this.keysToFiles(
            v.name,
            "configmap",
            this.configMapData(cm),
            source.configMap.items,
            mode,
            source.configMap.optional,
            files,
          );
        } else if (source.secret) {
          const s = await this.secret(v.name, source.secret.name ?? "", source.secret.optional);
          this.keysToFiles(
            v.name,
            "secret",
            this.secretData(s),
            source.secret.items,
            mode,
            source.secret.optional,
            files,
          );
        } else if (source.downwardAPI) {
          this.downwardFiles(source.downwardAPI.items ?? [], mode, files);
        } else if (source.serviceAccountToken) {
          const t = source.serviceAccountToken;
          const token = await this.src.tokens
            .get({
              namespace: this.namespace,
              serviceAccount: this.pod.spec?.serviceAccountName ?? "default",
              audience: t.audience ?? "",
              expirationSeconds: t.expirationSeconds ?? 3600,
              podName: this.pod.metadata?.name ?? "",
              podUID: this.pod.metadata?.uid ?? "",
            })
            .catch((err: unknown) => {
              throw new VolumeError(v.name, `failed to fetch token: ${apiErrorMessage(err)}`);
            });
          files.set(t.path, { data: Buffer.from(token), mode });
        } else {
          throw new VolumeError(
            v.name,
            "the node agent supports only configMap, secret, downwardAPI and serviceAccountToken projections",
          );
        }
      }
    } else {
      return undefined;
    }
    return files;
  }

  /** The bind mounts of one container, in the order of its volumeMounts. */
  mountsFor(c: Container): Mount[] {
    return (c.volumeMounts ?? []).map((m) => {
      const base = this.paths.get(m.name);
      if (!base) throw new Error(`volume "${m.name}" of container "${c.name}" is not set up`);
      const vol = this.pod.spec?.volumes?.find((v) => v.name === m.name);
      // The kubelet mounts these volume types read-only whatever the mount says.
      const alwaysReadOnly = !!(vol?.configMap || vol?.secret || vol?.downwardAPI || vol?.projected);
      return {
        source: m.subPath ? join(base, m.subPath) : base,
        target: m.mountPath,
        readOnly: alwaysReadOnly || m.readOnly === true,
      };
    });
  }

  /** Unmounts what setUp mounted and removes the pod's volume directories. */
  async tearDown(): Promise<void> {
    for (const path of this.mounted.splice(0).reverse()) {
      await run(["umount", path], { allowFailure: true });
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

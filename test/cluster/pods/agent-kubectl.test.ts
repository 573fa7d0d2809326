// kubectl's streaming commands against pods on the node agent: exec (exit codes, stdin) and
// port-forward, both through the apiserver to the agent's kubelet port.
import { spawn } from "node:child_process";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, tool } from "../../charts/helm.ts";
import { createNamespace, deleteNamespace, kubeConfig } from "../kube.ts";
import { paths } from "../launcher/config.ts";
import { createPod, isReady, waitForPod } from "./pods.ts";

const env = { KUBECONFIG: paths.kubeconfig };

describe("kubectl exec and port-forward", () => {
  const kc = kubeConfig();
  let namespace: string;

  beforeAll(async () => {
    namespace = await createNamespace(kc, "agent-kubectl");
    await createPod(kc, namespace, "web", {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "web", image: "nginx", env: [{ name: "GREETING", value: "hi" }] }],
    });
    await waitForPod(kc, namespace, "web", "Ready", isReady);
  });
  afterAll(async () => {
    if (namespace) await deleteNamespace(kc, namespace);
  });

  it("runs a command in the container with its environment, and passes its exit code on", () => {
    const ok = run(
      "kubectl",
      ["-n", namespace, "exec", "web", "--", "sh", "-c", 'echo "$GREETING from $(hostname)"'],
      { env },
    );
    expect(ok).toMatchObject({ status: 0, stdout: "hi from web\n" });
    const failed = run(
      "kubectl",
      ["-n", namespace, "exec", "web", "--", "sh", "-c", "echo oops >&2; exit 3"],
      { env },
    );
    expect(failed.status).toBe(3);
    expect(failed.stderr).toContain("oops");
    const piped = run("kubectl", ["-n", namespace, "exec", "-i", "web", "--", "cat"], {
      env,
      input: "through stdin",
    });
    expect(piped.stdout).toBe("through stdin");
  });

  it("forwards a local port to the pod", async () => {
    const child = spawn(tool("kubectl"), ["-n", namespace, "port-forward", "pod/web", ":80"], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.on("exit", (code) => reject(new Error(`kubectl port-forward exited with ${code}`)));
      });
      const body = await new Promise<string>((resolve, reject) => {
        request(`http://127.0.0.1:${port}/`, { agent: false }, (res) => {
          let b = "";
          res.on("data", (d: Buffer) => (b += d.toString()));
          res.on("end", () => resolve(b));
        })
          .on("error", reject)
          .end();
      });
      expect(body).toContain("Welcome to nginx!");
    } finally {
      child.kill();
    }
  });
});

// The Kubernetes client configuration: an explicit kubeconfig file, else the usual
// defaults (KUBECONFIG, ~/.kube/config, then the in-cluster service account).
import { KubeConfig } from "@kubernetes/client-node";

export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) {
    throw new Error("no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a pod");
  }
  return kc;
}

// npm run cluster:down
// Stops every process of the local cluster (the worker nodes first) and removes .local-cluster.
import { down } from "./launcher/cluster.ts";

const log = (msg: string) => console.error(`[cluster] ${msg}`);
try {
  await down(log);
  log("the cluster is down");
} catch (err) {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
}

import { configDefaults, defineConfig } from "vitest/config";

// The fault suite runs with `npm run test:faults` (CHA_LONG_FAULTS=1). The soak
// (*.long.test.ts) takes tens of minutes and stays out of `npm test` and CI; the shorter faults
// join `npm test` once each has had a green run on the local cluster (watch-stall and
// control-plane-restart have).
const longFaults = [
  "test/cluster/faults/**/*.long.test.ts",
  "test/cluster/faults/control-plane-restart.test.ts",
  "test/cluster/faults/handler-kill.test.ts",
  "test/cluster/faults/updates-under-deletions.test.ts",
];

// Five projects: `unit` needs nothing but Node; `integration` runs components together
// in one process, on 127.0.0.1; `package` runs the built CLI from production dependencies
// only, as the container image does; `charts` renders the Helm charts with the
// helm that test/cluster/build.sh builds; `cluster` runs against the local control
// plane that test/cluster/global-setup.ts starts once per run (see test/cluster/README.md).
export default defineConfig({
  test: {
    // Stopping a cluster that the run started waits for the node agent to stop its pods.
    teardownTimeout: 150_000,
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          // In-process flows over real sockets and TLS, without Kubernetes.
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "package",
          // The image's runtime stage without Docker: `npm ci --omit=dev` and dist/.
          include: ["test/package/**/*.test.ts"],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: "image",
          // test/cluster/image/build.sh: buildah builds the Dockerfile (minutes, cold).
          include: ["test/image/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 1_200_000,
        },
      },
      {
        test: {
          name: "charts",
          include: ["test/charts/**/*.test.ts"],
          // Each case runs `helm template` (a second or so on 2 shared cores).
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: "cluster",
          include: ["test/cluster/**/*.test.ts"],
          // The tests of the real node stack (three kubelets on containerd) run when the cluster
          // is that stack: CHA_NODE_STACK=real (test/cluster/README.md). The node agent has one node.
          exclude: [
            ...configDefaults.exclude,
            ...(process.env["CHA_NODE_STACK"] === "real"
              ? []
              : [
                  "test/cluster/nodes/**",
                  "test/cluster/lifecycle/**",
                  "test/cluster/e2e/node-drain.test.ts",
                  "test/cluster/e2e/security-context.test.ts",
                ]),
            ...(process.env["CHA_LONG_FAULTS"] ? [] : longFaults),
          ],
          globalSetup: ["test/cluster/global-setup.ts"],
          // The files share one cluster (and one node): one at a time.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});

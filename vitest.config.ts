import { configDefaults, defineConfig } from "vitest/config";

// The fault suite runs with `npm run test:faults` (CHA_LONG_FAULTS=1). The soak
// (*.long.test.ts) takes tens of minutes and stays out of `npm test` and CI; every other fault
// is in `npm test` (each had at least two green runs on the real node stack before it joined;
// docs/reliability.md lists every run, the failed ones too).
const longFaults = ["test/cluster/faults/**/*.long.test.ts"];
// The dashboard test needs the Prometheus server, whose cold build (about 3 more minutes after
// promtool, on 2 cores) CI does not pay: `npm run test:dashboard` builds it and runs the test.
const dashboard = "test/cluster/charts/dashboard.test.ts";

// Five projects: `unit` needs nothing but Node; `integration` runs components together
// in one process, on 127.0.0.1; `package` runs the built CLI from production dependencies
// only, as the container image does; `charts` renders the Helm charts with the
// helm that test/cluster/build.sh builds; `cluster` runs against the local control
// plane that test/cluster/global-setup.ts starts once per run (see test/cluster/README.md).
export default defineConfig({
  test: {
    // Stopping a cluster that the run started stops every pod on its nodes first.
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
          exclude: [
            ...configDefaults.exclude,
            ...(process.env["CHA_LONG_FAULTS"] ? [] : longFaults),
            ...(process.env["CHA_DASHBOARD"] ? [] : [dashboard]),
          ],
          globalSetup: ["test/cluster/global-setup.ts"],
          // The files share one cluster: one at a time.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});

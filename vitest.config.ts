import { defineConfig } from "vitest/config";

// Three projects: `unit` needs nothing but Node; `charts` renders the Helm charts with the
// helm that test/cluster/build.sh builds; `cluster` runs against the local control
// plane that test/cluster/global-setup.ts starts once per run.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
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
    ],
  },
});

import { defineConfig } from "vitest/config";

// Two projects: `unit` needs nothing but Node; `cluster` runs against the local control
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
    ],
  },
});

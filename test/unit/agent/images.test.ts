import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  ImagePullError,
  normalizedImage,
  parseImageMap,
  parseReference,
  resolveImage,
} from "../../cluster/agent/images.ts";

const map = parseImageMap(
  readFileSync(new URL("../../cluster/agent/images.yaml", import.meta.url), "utf8"),
  "test/cluster/agent/images.yaml",
  "/repo",
);

describe("image references", () => {
  it.each([
    ["busybox", "docker.io/library/busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36"],
    ["library/busybox", "docker.io/library/busybox:latest"],
    ["someone/tool:v1", "docker.io/someone/tool:v1"],
    ["ghcr.io/coordinator-ha/coordinator-ha:0.1.0", "ghcr.io/coordinator-ha/coordinator-ha:0.1.0"],
    ["localhost:5000/x", "localhost:5000/x:latest"],
    ["registry.k8s.io/pause@sha256:abc", "registry.k8s.io/pause@sha256:abc"],
  ])("normalizes %s to %s", (ref, normalized) => {
    expect(normalizedImage(ref)).toBe(normalized);
  });

  it("keeps a registry port apart from a tag", () => {
    expect(parseReference("localhost:5000/x:1")).toEqual({ repository: "localhost:5000/x", tag: "1" });
  });
});

describe("the image mapping", () => {
  it("runs the project's image, any tag, as the built CLI with the container's args appended", () => {
    const r = resolveImage(map, "ghcr.io/coordinator-ha/coordinator-ha:9.9.9", {
      args: ["handler", "--port", "1"],
    });
    expect(r.argv).toEqual(["/repo/node_modules/.bin/node", "/repo/dist/cli.js", "handler", "--port", "1"]);
    expect(r.image).toBe("ghcr.io/coordinator-ha/coordinator-ha:9.9.9");
    expect(r.imageID).toMatch(/^ghcr\.io\/coordinator-ha\/coordinator-ha@sha256:[0-9a-f]{64}$/);
  });

  it("lets command replace the entrypoint and the image's cmd", () => {
    expect(resolveImage(map, "busybox", { command: ["sleep"], args: ["5"] }).argv).toEqual(["sleep", "5"]);
    expect(resolveImage(map, "busybox", {}).argv).toEqual(["sh"]);
    expect(resolveImage(map, "busybox", { args: ["-c", "true"] }).argv).toEqual(["-c", "true"]);
  });

  it("puts the project's Node.js first on PATH for the node image", () => {
    const r = resolveImage(map, "node:24", { command: ["node", "-e", "1"] });
    expect(r.env["PATH"]).toMatch(/^\/repo\/node_modules\/\.bin:/);
  });

  it("refuses an unmapped image, naming the image and the mapping file", () => {
    expect(() => resolveImage(map, "example.com/nope:1", {})).toThrow(ImagePullError);
    expect(() => resolveImage(map, "example.com/nope:1", {})).toThrow(
      /"example\.com\/nope:1".*test\/cluster\/agent\/images\.yaml.*"example\.com\/nope"/,
    );
  });

  it("rejects a malformed mapping with the file and the entry in the message", () => {
    expect(() => parseImageMap("images:\n  busybox:\n    cmd: sh\n", "f.yaml", "/r")).toThrow(
      'f.yaml: images["busybox"].cmd must be a list of strings',
    );
    expect(() => parseImageMap("x: 1\n", "f.yaml", "/r")).toThrow(
      /f\.yaml: expected a top-level "images" map/,
    );
  });
});

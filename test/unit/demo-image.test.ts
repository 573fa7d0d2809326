import { describe, expect, it } from "vitest";
import { parseImage } from "../../demo/image.ts";

describe("parseImage (npm run demo --image)", () => {
  it("takes a repository with a tag, a digest, or neither", () => {
    expect(parseImage("ghcr.io/coordinator-ha/coordinator-ha:0.1.0")).toEqual({
      repository: "ghcr.io/coordinator-ha/coordinator-ha",
      tag: "0.1.0",
    });
    expect(parseImage(`registry.example:5000/team/cha@sha256:${"a".repeat(64)}`)).toEqual({
      repository: "registry.example:5000/team/cha",
      digest: `sha256:${"a".repeat(64)}`,
    });
    // The colon of a registry port is not a tag.
    expect(parseImage("registry.example:5000/cha")).toEqual({ repository: "registry.example:5000/cha" });
  });

  it("says what is wrong with a bad reference", () => {
    expect(() => parseImage("Registry.example/cha:1")).toThrow(/not an image repository/);
    expect(() => parseImage("cha:-x")).toThrow(/not a valid tag/);
    expect(() => parseImage("cha@sha256:abc")).toThrow(/sha256:<64 hex digits>/);
  });
});

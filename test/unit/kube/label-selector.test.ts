import { describe, expect, it } from "vitest";
import { parseLabelSelector } from "../../../src/kube/label-selector.ts";

const labels = { "app.kubernetes.io/name": "coordinator", tier: "backend", canary: "" };

describe("parseLabelSelector", () => {
  it.each([
    ["app.kubernetes.io/name=coordinator", true],
    ["app.kubernetes.io/name==coordinator", true],
    ["app.kubernetes.io/name = coordinator", true],
    ["app.kubernetes.io/name=vault", false],
    ["app.kubernetes.io/name=coordinator,tier=backend", true],
    ["app.kubernetes.io/name=coordinator,tier=frontend", false],
    ["tier!=frontend", true],
    ["tier!=backend", false],
    ["missing!=x", true],
    ["tier", true],
    ["missing", false],
    ["!missing", true],
    ["!tier", false],
    ["tier in (frontend, backend)", true],
    ["tier in (frontend)", false],
    ["tier notin (frontend)", true],
    ["missing notin (frontend)", true],
    ["tier notin (backend,frontend)", false],
    ["canary=", true],
    ["canary in (a,b),tier=backend", false],
  ])("%s matches: %s", (text, expected) => {
    expect(parseLabelSelector(text).matches(labels)).toBe(expected);
  });

  it("matches nothing but an absence on a pod without labels", () => {
    expect(parseLabelSelector("app=x").matches(undefined)).toBe(false);
    expect(parseLabelSelector("!app").matches(undefined)).toBe(true);
  });

  it("keeps the text for the apiserver", () => {
    expect(parseLabelSelector("  app.kubernetes.io/name=coordinator ").text).toBe(
      "app.kubernetes.io/name=coordinator",
    );
  });

  it.each([
    "",
    "   ",
    "a=b,",
    "=b",
    "a=b=c",
    "a in ()",
    "a in (b",
    "a in (b,,c)",
    "-a=b",
    "a=b c",
    "a/b/c=d",
    "a=" + "x".repeat(64),
  ])("refuses %j", (text) => {
    expect(() => parseLabelSelector(text)).toThrow(/selector/);
  });
});

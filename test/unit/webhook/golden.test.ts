// Golden tests of the mutation (in the manner of Istio's pkg/kube/inject/testdata): each
// testdata/<case>.in.json pod goes through the whole review, the returned patch is applied
// as the apiserver would apply it, and the result must equal testdata/<case>.golden.json.
//
// After an intended change, regenerate and then review the diff of the goldens:
//   UPDATE_GOLDEN=1 npx vitest run test/unit/webhook/golden.test.ts
import { readdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { format, resolveConfig } from "prettier";
import { describe, expect, it } from "vitest";
import { STATUS_ANNOTATION } from "../../../src/names.ts";
import { injectPod } from "../../../src/webhook/inject.ts";
import type { Pod } from "../../../src/webhook/pod-shape.ts";
import { review } from "../../../src/webhook/review.ts";
import { applyPatch, decodePatch, params, podReview, readJson, TESTDATA } from "./fixtures.ts";

const cases = readdirSync(TESTDATA)
  .filter((f) => f.endsWith(".in.json"))
  .map((f) => f.slice(0, -".in.json".length));

async function writeGolden(name: string, pod: unknown): Promise<void> {
  const file = fileURLToPath(new URL(`${name}.golden.json`, TESTDATA));
  const options = { ...(await resolveConfig(file)), filepath: file };
  writeFileSync(file, await format(JSON.stringify(pod), options));
}

function injectedByReview(input: Pod) {
  const result = review(podReview(input), params);
  if (result.status !== 200) throw new Error(`review failed: ${result.message}`);
  expect(result.outcome).toBe("injected");
  expect(result.review.response.allowed).toBe(true);
  return applyPatch(input, decodePatch(result.review.response));
}

describe("golden pods", () => {
  it("has the cases the issue asks for", () => {
    expect(cases).toEqual(
      expect.arrayContaining([
        "contrast-coordinator",
        "existing-init-containers",
        "minimal",
        "multi-container",
        "partially-injected",
      ]),
    );
  });

  describe.each(cases)("%s", (name) => {
    const input = readJson<Pod>(`${name}.in.json`);

    it("injects into the golden pod", async () => {
      const patched = injectedByReview(input);
      // Written from the pure mutation: same content, but in a readable key order.
      if (process.env["UPDATE_GOLDEN"] === "1") await writeGolden(name, injectPod(input, params));
      expect(patched).toEqual(readJson(`${name}.golden.json`));
      // The pure mutation and the patch agree: the patch loses nothing.
      expect(injectPod(input, params)).toEqual(patched);
    });

    it("gets no patch a second time", () => {
      const patched = injectedByReview(input);
      const again = review(podReview(patched), params);
      expect(again).toMatchObject({ status: 200, outcome: "skipped", reason: "already_injected" });
      expect(again.status === 200 && again.review.response.patch).toBe(undefined);
    });

    it("never modifies its input", () => {
      // A frozen object throws on any write in strict mode (ES modules are strict).
      const deepFreeze = <T>(value: T): T => {
        if (typeof value === "object" && value !== null)
          Object.values(Object.freeze(value)).forEach(deepFreeze);
        return value;
      };
      const frozen = deepFreeze(structuredClone(input));
      expect(injectPod(frozen, params)).toEqual(readJson(`${name}.golden.json`));
      expect(frozen).toEqual(input);
    });

    it("adds nothing twice, even without the status annotation", () => {
      const patched = injectedByReview(input);
      expect(injectPod(patched, params)).toEqual(patched);

      // As if another webhook had dropped our annotation: only the annotation comes back.
      const stripped = structuredClone(patched);
      delete stripped.metadata?.annotations?.[STATUS_ANNOTATION];
      const result = review(podReview(stripped), params);
      if (result.status !== 200) throw new Error(result.message);
      expect(decodePatch(result.review.response)).toEqual([
        {
          op: "add",
          path: `/metadata/annotations/${STATUS_ANNOTATION.replace("/", "~1")}`,
          value: "injected",
        },
      ]);
    });
  });
});

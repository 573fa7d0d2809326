import { describe, expect, it } from "vitest";
import { tailLines } from "../../cluster/agent/node/kubelet-server.ts";

describe("kubectl logs --tail", () => {
  it.each([
    ["a\nb\nc\n", 2, "b\nc\n"],
    ["a\nb\nc", 2, "b\nc"],
    ["a\nb\n", 5, "a\nb\n"],
    ["a\nb\n", 0, ""],
    ["", 3, ""],
  ])("tail of %j by %i lines is %j", (text, n, out) => expect(tailLines(text, n)).toBe(out));
});

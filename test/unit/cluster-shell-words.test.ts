import { describe, expect, it } from "vitest";
import { shellWords } from "../cluster/workflow/shell.ts";

describe("shellWords", () => {
  it("splits the operator guide's commands as a shell does", () => {
    expect(
      shellWords(
        "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=2m",
      ),
    ).toEqual([
      "kubectl",
      "wait",
      "statefulset/coordinator",
      "--for=jsonpath={.status.readyReplicas}=3",
      "--timeout=2m",
    ]);
    expect(
      shellWords(
        `kubectl get pod coordinator-0 -o jsonpath='{.status.conditions[?(@.type=="x/y")].message}'`,
      ),
    ).toEqual([
      "kubectl",
      "get",
      "pod",
      "coordinator-0",
      "-o",
      `jsonpath={.status.conditions[?(@.type=="x/y")].message}`,
    ]);
    expect(shellWords("  helm   install  a\tb ")).toEqual(["helm", "install", "a", "b"]);
  });

  it("joins quoted and unquoted parts of one word, and keeps empty quoted words", () => {
    expect(shellWords(`a'b c'"d \\" e"f\\ g ''`)).toEqual(['ab cd " ef g', ""]);
  });

  it("refuses what only a shell could do", () => {
    for (const line of ["kubectl get pods | head", "echo $HOME", "a > b", "a; b", "a `b`", "a # comment"]) {
      expect(() => shellWords(line), line).toThrow(/not supported/);
    }
    expect(() => shellWords("a 'b")).toThrow(/unterminated '/);
    expect(() => shellWords('a "b')).toThrow(/unterminated "/);
  });
});

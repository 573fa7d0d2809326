// Shared settings of the fuzz tests (fast-check). Every property runs with one seed, so that a
// run is reproducible and CI is deterministic; FUZZ_SEED picks another one (a number, or
// "random" for a fresh one each run) and FUZZ_RUNS scales the number of cases (default 1x).
// A failure prints the seed, the shrunk counterexample and the path to replay it
// (fast-check's report; run again with FUZZ_SEED=<seed> to reproduce).
import fc from "fast-check";

const DEFAULT_SEED = 20261205;

function seed(): number {
  const text = process.env["FUZZ_SEED"];
  if (text === undefined || text === "") return DEFAULT_SEED;
  if (text === "random") return Math.floor(Math.random() * 2 ** 31);
  const n = Number(text);
  if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED=${text} is neither an integer nor "random"`);
  return n;
}

const SEED = seed();
const SCALE = Number(process.env["FUZZ_RUNS"] ?? 1);

/** A test's time limit for `ms` at the default number of cases (scaled like the cases). */
export function fuzzTimeout(ms: number): number {
  return Math.max(ms, Math.round(ms * SCALE));
}

/** fast-check parameters for `runs` cases (times FUZZ_RUNS). */
export function fuzz(runs: number): fc.Parameters<unknown> {
  return { seed: SEED, numRuns: Math.max(1, Math.round(runs * SCALE)), verbose: 1 };
}

/** Strings that parsers meet in the wild: JSON-ish, unicode, long, and plain junk. */
export const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: "binary" }),
  fc.constantFrom("", " ", "\u0000", "..", "../..", "/", "\\", "__proto__", "constructor", "\ud800", "💥"),
  fc.string({ minLength: 300, maxLength: 2000 }),
);

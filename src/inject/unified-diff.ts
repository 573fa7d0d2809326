// A unified diff (`diff -u` format, 3 lines of context) of two texts, for `inject --diff`.
// Manifests are a few hundred lines, so the plain LCS table (lines × lines) is small enough
// and its answer is the shortest edit.
const CONTEXT = 3;

type Line = { op: " " | "-" | "+"; text: string; a: number; b: number };

export function unifiedDiff(before: string, after: string, fromName: string, toName: string): string {
  if (before === after) return "";
  const a = splitLines(before);
  const b = splitLines(after);
  const lines = editScript(a, b);
  const hunks: string[] = [];
  let i = 0;
  while (i < lines.length) {
    if (lines[i]!.op === " ") {
      i++;
      continue;
    }
    // A hunk: the change, with context around it, merged with the next change when close.
    const start = Math.max(0, i - CONTEXT);
    let end = i;
    for (;;) {
      while (end < lines.length && lines[end]!.op !== " ") end++;
      let next = end;
      while (next < lines.length && lines[next]!.op === " ") next++;
      if (next < lines.length && next - end <= 2 * CONTEXT) end = next;
      else break;
    }
    end = Math.min(lines.length, end + CONTEXT);
    const body = lines.slice(start, end);
    const aStart = body[0]!.a;
    const bStart = body[0]!.b;
    const aCount = body.filter((l) => l.op !== "+").length;
    const bCount = body.filter((l) => l.op !== "-").length;
    hunks.push(
      `@@ -${range(aStart, aCount)} +${range(bStart, bCount)} @@\n` +
        body.map((l) => `${l.op}${l.text}\n`).join(""),
    );
    i = end;
  }
  return `--- ${fromName}\n+++ ${toName}\n${hunks.join("")}`;
}

function range(start: number, count: number): string {
  // diff -u: a hunk that covers no line of a side names the line before it.
  return `${count === 0 ? start : start + 1},${count}`;
}

function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

function editScript(a: string[], b: string[]): Line[] {
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: Line[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push({ op: " ", text: a[i]!, a: i++, b: j++ });
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      out.push({ op: "-", text: a[i]!, a: i++, b: j });
    } else {
      out.push({ op: "+", text: b[j]!, a: i, b: j++ });
    }
  }
  return out;
}

// `coordinator-ha inject` without I/O: manifest text in, manifest text and one report per pod
// template out. Each template goes through the webhook's own steps (the pod's shape, the
// opt-out, "already injected", conflicts, then injectPod from src/webhook/inject.ts), so
// that a pod created from the output is what the webhook would have made of the input, and
// the webhook then leaves it alone. YAML keeps its comments, order and every other document
// (the yaml package's Document API); JSON stays JSON.
import { Composer, CST, Parser, type Document } from "yaml";
import type { LabelSelector } from "../kube/label-selector.ts";
import { INJECT_ANNOTATION } from "../names.ts";
import { isInjected, isOptedOut } from "../webhook/annotations.ts";
import { findConflict, injectPod } from "../webhook/inject.ts";
import { checkPod } from "../webhook/pod-shape.ts";
import { skipReasons } from "../webhook/reasons.ts";
import type { InjectionParams } from "../webhook/sidecar.ts";
import { findPodTemplates } from "./pod-templates.ts";
import { reconcile } from "./yaml-reconcile.ts";

export interface InjectOptions {
  params: InjectionParams;
  /** The webhook's objectSelector: which pod templates are Coordinators. */
  selector: LabelSelector;
  /**
   * Inject templates that are already injected again, with these params: injectPod replaces
   * its own sidecar and volumes in place, so an upgrade (a new image, handler URL or CA)
   * reaches manifests that the webhook, which leaves injected pods alone, never changes.
   */
  reinject?: boolean;
}

type Outcome =
  | { outcome: "injected" }
  | { outcome: "skipped"; reason: SkipReason; message: string }
  | { outcome: "refused"; reason: RefuseReason; message: string };

export type TemplateReport = Outcome & { owner: string };

export type SkipReason = "not_selected" | "opted_out" | "already_injected";
export type RefuseReason = "invalid_template" | "state_dir_conflict" | "reserved_name";

export interface InjectResult {
  text: string;
  reports: TemplateReport[];
}

/** Injects every selected pod template of a YAML or JSON manifest (one or more documents). */
export function injectManifest(text: string, options: InjectOptions): InjectResult {
  return /^\s*[{[]/.test(text) ? injectJson(text, options) : injectYaml(text, options);
}

function injectYaml(text: string, options: InjectOptions): InjectResult {
  // The parser's tokens give the source of every document and of what lies between them
  // (comments, `...`): an unchanged document is written back from its source, byte for byte,
  // and a changed one is rendered from its Document, which keeps comments and styles. The
  // comments just above a document belong to it (the composer attaches them), so they are
  // written with it.
  const tokens = [...new Parser().parse(text)];
  const docs = [...new Composer().compose(tokens)];
  const reports: TemplateReport[] = [];
  const out: string[] = [];
  let above: string[] = [];
  let d = 0;
  // The last document was rendered: its `...` and the comments after it are in its rendering.
  let rendered: Document | undefined;
  for (const token of tokens) {
    if (token.type === "comment" || token.type === "newline" || token.type === "space") {
      above.push(CST.stringify(token));
      continue;
    }
    if (token.type !== "document") {
      if (!(rendered && token.type === "doc-end")) out.push(...above, CST.stringify(token));
      above = [];
      continue;
    }
    rendered = undefined;
    const doc = docs[d++]!;
    if (doc.errors.length > 0) {
      throw new ManifestError(`document ${d} is not valid YAML: ${doc.errors[0]!.message}`);
    }
    const result = injectObject(doc.toJS(), options);
    reports.push(...result.reports);
    if (!result.changed) {
      out.push(...above, CST.stringify(token));
      above = [];
      continue;
    }
    above = [];
    rendered = doc;
    doc.contents = reconcile(doc, doc.contents, result.object as never) as typeof doc.contents;
    const source = CST.stringify(token);
    out.push(
      doc.toString({
        // Long strings stay on one line, as most manifests have them; flow collections
        // keep the padding that the file uses.
        lineWidth: 0,
        flowCollectionPadding: /[{[] [^\s\]}]/.test(source),
        indentSeq: indentsSequences(source),
      }),
    );
  }
  // Comments after the last document are its own when it was rendered.
  if (!rendered?.comment) out.push(...above);
  return { text: out.join(""), reports };
}

/**
 * Whether the document indents a block sequence under its key (`key:\n  - a`) or not
 * (`key:\n- a`, as `toYaml` in Helm templates writes it): the style most of its lists have.
 */
function indentsSequences(source: string): boolean {
  let indented = 0;
  let flush = 0;
  const lines = source.split("\n");
  for (let i = 1; i < lines.length; i++) {
    const item = /^( *)- /.exec(lines[i]!);
    const key = /^( *)[^\s#-][^#]*:\s*$/.exec(lines[i - 1]!);
    if (!item || !key) continue;
    if (item[1]!.length > key[1]!.length) indented++;
    else if (item[1]!.length === key[1]!.length) flush++;
  }
  return indented >= flush;
}

function injectJson(text: string, options: InjectOptions): InjectResult {
  let object: unknown;
  try {
    object = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(`not valid JSON: ${(err as Error).message}`);
  }
  const result = injectObject(object, options);
  return {
    text: result.changed ? `${JSON.stringify(result.object, null, 2)}\n` : text,
    reports: result.reports,
  };
}

export class ManifestError extends Error {}

/** The object with its selected pod templates injected (a copy; the input stays as it is). */
export function injectObject(
  object: unknown,
  options: InjectOptions,
): { object: unknown; changed: boolean; reports: TemplateReport[] } {
  const copy = structuredClone(object);
  const reports: TemplateReport[] = [];
  for (const ref of findPodTemplates(copy)) {
    const decision = decide(ref.template, options);
    reports.push({ owner: ref.owner, ...decision.report });
    if (decision.injected) {
      ref.template["metadata"] = decision.injected.metadata;
      ref.template["spec"] = decision.injected.spec;
    }
  }
  return { object: copy, changed: reports.some((r) => r.outcome === "injected"), reports };
}

type Decision = {
  report: Outcome;
  injected?: { metadata: unknown; spec: unknown };
};

/** The webhook's steps, in the webhook's order (src/webhook/review.ts), for one template. */
function decide(template: Record<string, unknown>, options: InjectOptions): Decision {
  const checked = checkPod({ metadata: template["metadata"], spec: template["spec"] });
  if ("problem" in checked) {
    const message = checked.problem.replace(/request\.object/g, "the pod template");
    return { report: { outcome: "refused", reason: "invalid_template", message } };
  }
  const pod = checked.pod;
  const labels = pod.metadata?.labels;
  if (!options.selector.matches(labels)) {
    const message = `its labels do not match the selector ${options.selector.text}`;
    return { report: { outcome: "skipped", reason: "not_selected", message } };
  }
  if (labels?.[INJECT_ANNOTATION] === "false") {
    const message = `the pod opts out with the label ${INJECT_ANNOTATION}: "false"`;
    return { report: { outcome: "skipped", reason: "opted_out", message } };
  }
  if (isOptedOut(pod)) {
    return { report: { outcome: "skipped", reason: "opted_out", message: skipReasons.opted_out } };
  }
  if (isInjected(pod) && !options.reinject) {
    const message = skipReasons.already_injected;
    return { report: { outcome: "skipped", reason: "already_injected", message } };
  }
  const conflict = findConflict(pod, options.params.stateDir);
  if (conflict) return { report: { outcome: "refused", reason: conflict.reason, message: conflict.message } };
  const injected = injectPod(pod, options.params);
  return { report: { outcome: "injected" }, injected: { metadata: injected.metadata, spec: injected.spec } };
}

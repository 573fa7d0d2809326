// AdmissionReview in, AdmissionReview out: the decisions of the webhook, without HTTP.
// The server around it only reads the body and writes what this returns.
import { Buffer } from "node:buffer";
import { isInjected, isOptedOut } from "./annotations.ts";
import { findConflict, injectPod } from "./inject.ts";
import { diffPatch } from "./patch.ts";
import { checkPod } from "./pod-shape.ts";
import { skipReasons, type Outcome, type RejectReason, type SkipReason } from "./reasons.ts";
import type { InjectionParams } from "./sidecar.ts";

const API_VERSION = "admission.k8s.io/v1";
/** The apiserver sends a UUID (36 characters). */
const MAX_UID_LENGTH = 128;
const UID = new RegExp(`^[A-Za-z0-9._-]{1,${MAX_UID_LENGTH}}$`);
/** Longer than any Kubernetes name (253): what the log line keeps of a field. */
const MAX_LOGGED_LENGTH = 256;
const MAX_MESSAGE_LENGTH = 512;
const KIND = "AdmissionReview";

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: "JSONPatch";
  /** base64 of the RFC 6902 patch. */
  patch?: string;
  status?: { code: number; message: string };
}

export interface AdmissionReviewResponse {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  response: AdmissionResponse;
}

/** Who a request is about, for the log line. */
export interface Subject {
  uid?: string;
  namespace?: string;
  pod?: string;
  operation?: string;
  dryRun?: boolean;
}

export type ReviewResult =
  | {
      /** The apiserver gets an AdmissionReview (HTTP 200). */
      status: 200;
      review: AdmissionReviewResponse;
      outcome: Outcome;
      reason: SkipReason | RejectReason | "";
      /** Why, in the user's words (for the log line). */
      message: string;
      subject: Subject;
    }
  | {
      /** The body is not a usable AdmissionReview (HTTP 400). */
      status: 400;
      outcome: "rejected";
      reason: RejectReason;
      /** What is wrong with the body; sent back as `{"error": message}`. */
      message: string;
      subject: Subject;
    };

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reviews a raw request body. */
export function reviewBody(body: Buffer, params: InjectionParams): ReviewResult {
  if (body.length === 0) {
    return badRequest("invalid_json", `body is empty; POST an AdmissionReview (${API_VERSION}) as JSON`, {});
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (err) {
    return badRequest("invalid_json", `body is not JSON: ${(err as Error).message}`, {});
  }
  return review(parsed, params);
}

/** Reviews a parsed AdmissionReview. */
export function review(body: unknown, params: InjectionParams): ReviewResult {
  if (!isObject(body)) {
    return badRequest("invalid_review", "body is not a JSON object (an AdmissionReview)", {});
  }
  if (body["kind"] !== KIND || body["apiVersion"] !== API_VERSION) {
    return badRequest(
      "invalid_review",
      `body is ${JSON.stringify(body["apiVersion"] ?? null)}/${JSON.stringify(body["kind"] ?? null)}; expected apiVersion "${API_VERSION}", kind "${KIND}"`,
      {},
    );
  }
  const request = body["request"];
  if (!isObject(request)) return badRequest("invalid_review", "AdmissionReview has no request", {});

  const subject = subjectOf(request);
  const uid = request["uid"];
  if (typeof uid !== "string" || uid === "") {
    return badRequest("invalid_review", "AdmissionReview request has no uid", subject);
  }
  // The answer echoes the uid: a uid of megabytes would be echoed (and logged) in full.
  if (!UID.test(uid)) {
    return badRequest(
      "invalid_review",
      `AdmissionReview request.uid is not a uid (at most ${MAX_UID_LENGTH} letters, digits, ".", "_" and "-")`,
      subject,
    );
  }
  const operation = request["operation"];
  if (typeof operation !== "string") {
    return badRequest("invalid_review", "AdmissionReview request has no operation", subject);
  }

  if (!isPodRequest(request)) return skip(uid, "not_pod", subject);
  if (operation !== "CREATE") return skip(uid, "not_create", subject);

  const checked = checkPod(request["object"]);
  if ("problem" in checked) return badRequest("object_not_pod", checked.problem, subject);
  const pod = checked.pod;

  if (isOptedOut(pod)) return skip(uid, "opted_out", subject);
  if (isInjected(pod)) return skip(uid, "already_injected", subject);

  const conflict = findConflict(pod, params.stateDir);
  if (conflict) {
    const status = { code: 403, message: conflict.message };
    return answer({ uid, allowed: false, status }, "rejected", conflict.reason, conflict.message, subject);
  }

  const patch = diffPatch(pod, injectPod(pod, params));
  const response: AdmissionResponse = {
    uid,
    allowed: true,
    patchType: "JSONPatch",
    patch: Buffer.from(JSON.stringify(patch)).toString("base64"),
  };
  return answer(response, "injected", "", `injected with ${patch.length} patch operations`, subject);
}

/**
 * A request about something else than a Pod itself (another kind, a subresource such as
 * pods/binding) is allowed unchanged. When the request does not say its kind, the object
 * has to show that it is a Pod (and is checked as one).
 */
function isPodRequest(request: Json): boolean {
  const kind = request["kind"];
  if (isObject(kind) && (kind["kind"] !== "Pod" || (kind["group"] ?? "") !== "")) return false;
  const resource = request["resource"];
  if (isObject(resource) && resource["resource"] !== "pods") return false;
  const subResource = request["subResource"];
  return subResource === undefined || subResource === "";
}

/** Who the request is about, for the log line: every field bounded, whatever the body says. */
function subjectOf(request: Json): Subject {
  const subject: Subject = {};
  if (typeof request["uid"] === "string") subject.uid = bounded(request["uid"]);
  if (typeof request["namespace"] === "string") subject.namespace = bounded(request["namespace"]);
  if (typeof request["operation"] === "string") subject.operation = bounded(request["operation"]);
  if (typeof request["dryRun"] === "boolean") subject.dryRun = request["dryRun"];
  // A pod made from generateName has no name yet at admission time.
  const object = request["object"];
  const metadata = isObject(object) && isObject(object["metadata"]) ? object["metadata"] : {};
  const name = nonEmpty(request["name"]) ?? nonEmpty(metadata["name"]) ?? nonEmpty(metadata["generateName"]);
  if (name !== undefined) subject.pod = bounded(name);
  return subject;
}

function bounded(text: string): string {
  return text.length > MAX_LOGGED_LENGTH ? `${text.slice(0, MAX_LOGGED_LENGTH)}…` : text;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function skip(uid: string, reason: SkipReason, subject: Subject): ReviewResult {
  return answer({ uid, allowed: true }, "skipped", reason, skipReasons[reason], subject);
}

function answer(
  response: AdmissionResponse,
  outcome: Outcome,
  reason: SkipReason | RejectReason | "",
  message: string,
  subject: Subject,
): ReviewResult {
  const review = { apiVersion: API_VERSION, kind: KIND, response } as const;
  return { status: 200, review, outcome, reason, message, subject };
}

function badRequest(reason: RejectReason, message: string, subject: Subject): ReviewResult {
  // Messages quote the body (a kind, a parser's excerpt): never more than a line of it.
  const text = message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH)}…` : message;
  return { status: 400, outcome: "rejected", reason, message: text, subject };
}

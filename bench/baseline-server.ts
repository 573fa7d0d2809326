// The benchmark's baseline: the webhook's HTTP stack (the same reloading TLS server,
// express, body reading with the same limit, the same single-write answer) answering every
// POST /mutate with one fixed AdmissionReview, the JSON text of --answer, sent as it is. The
// difference to the webhook is the webhook's own work: reading the review, deciding,
// building and serializing its answer, logging and counting it.
// With --parse it first reads the body with JSON.parse, the one step that no webhook can
// skip, and so measures the most that any webhook on this stack can reach.
import express from "express";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { sendJsonText } from "../src/http/json.ts";
import { startTlsServer } from "../src/http/tls-server.ts";
import { MAX_BODY_BYTES } from "../src/webhook/server.ts";
import { WEBHOOK_LIMITS } from "../src/http/limits.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    answer: { type: "string" },
    parse: { type: "boolean", default: false },
  },
});

const answer = readFileSync(values.answer ?? "", "utf8");
JSON.parse(answer); // fail at startup, not per request, on an answer that is not JSON

const app = express();
app.disable("x-powered-by");
app.set("etag", false);
const parse = values.parse === true;
app.post("/mutate", express.raw({ type: () => true, limit: MAX_BODY_BYTES }), (req, res) => {
  if (
    parse &&
    typeof (JSON.parse((req.body as Buffer).toString("utf8")) as { request?: unknown }).request !== "object"
  ) {
    res.status(400).end();
    return;
  }
  sendJsonText(res, 200, answer);
});
app.get("/healthz", (_req, res) => {
  res.json({ status: "ok" });
});

await startTlsServer({
  port: Number(values.port),
  certFile: values["tls-cert"] ?? "",
  keyFile: values["tls-key"] ?? "",
  handler: app,
  logger: pino({ level: "warn" }),
  limits: WEBHOOK_LIMITS,
});

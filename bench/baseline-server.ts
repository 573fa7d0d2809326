// The benchmark's baseline: the webhook's HTTP stack (the same reloading TLS server,
// express, body reading with the same limit, the same single-write answer) answering every
// POST /mutate with one fixed AdmissionReview, the JSON text of --answer, sent as it is. The
// difference to the webhook is the webhook's own work: reading the review, deciding,
// building and serializing its answer, logging and counting it.
import express from "express";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { sendJsonText } from "../src/http/json.ts";
import { startTlsServer } from "../src/http/tls-server.ts";
import { MAX_BODY_BYTES } from "../src/webhook/server.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    answer: { type: "string" },
  },
});

const answer = readFileSync(values.answer ?? "", "utf8");
JSON.parse(answer); // fail at startup, not per request, on an answer that is not JSON

const app = express();
app.disable("x-powered-by");
app.set("etag", false);
app.post("/mutate", express.raw({ type: () => true, limit: MAX_BODY_BYTES }), (_req, res) => {
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
});

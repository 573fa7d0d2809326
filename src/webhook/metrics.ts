// The webhook's own metrics. The reason label comes from the table in reasons.ts, so its
// values are bounded and match the log lines.
import { Counter, Histogram, type Registry } from "prom-client";
import { rejectReasons, skipReasons, type Outcome, type RejectReason, type SkipReason } from "./reasons.ts";

export interface WebhookMetrics {
  observe(outcome: Outcome, reason: SkipReason | RejectReason | "", seconds: number): void;
}

export function webhookMetrics(registry: Registry): WebhookMetrics {
  const requests = new Counter({
    name: "coordinator_ha_webhook_admission_requests_total",
    help: "Admission requests by outcome (injected, skipped, rejected) and reason.",
    labelNames: ["outcome", "reason"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "coordinator_ha_webhook_admission_duration_seconds",
    help: "Time from receiving an admission request to answering it, by outcome.",
    labelNames: ["outcome"] as const,
    // The apiserver waits at most 30 s, and admission usually takes about a millisecond.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });

  // Every series exists from the start, so that a rate() over a rare reason is 0, not absent.
  requests.inc({ outcome: "injected", reason: "" }, 0);
  for (const reason of Object.keys(skipReasons)) requests.inc({ outcome: "skipped", reason }, 0);
  for (const reason of rejectReasons) requests.inc({ outcome: "rejected", reason }, 0);

  return {
    observe(outcome, reason, seconds) {
      requests.inc({ outcome, reason });
      duration.observe({ outcome }, seconds);
    },
  };
}

// Probe workers, one per container run and probe type, as the kubelet's prober worker
// (pkg/kubelet/prober/worker.go) runs them: no probe before initialDelaySeconds, then one
// every periodSeconds; readiness and liveness wait until the container has started (its
// startup probe succeeded); a result changes only after successThreshold successes or
// failureThreshold failures in a row; after a liveness failure, or once the startup probe
// decided, the worker holds until the container restarts (a new worker).
import type { Container } from "../kube/wire.ts";
import type { ProbeOutcome, ProbeResult } from "./probes.ts";

export type ProbeKind = "startup" | "readiness" | "liveness";
type ProbeSpec = NonNullable<Container["readinessProbe"]>;

/** The kubelet's initial values: not ready, alive, start unknown. */
export const INITIAL_RESULT: Record<ProbeKind, ProbeResult | undefined> = {
  readiness: "Failure",
  liveness: "Success",
  startup: undefined,
};

/** Consecutive results against the thresholds: returns a result once one is reached. */
export class Thresholds {
  private last: ProbeResult | undefined;
  private run = 0;
  private readonly success: number;
  private readonly failure: number;

  constructor(spec: Pick<ProbeSpec, "successThreshold" | "failureThreshold">) {
    this.success = spec.successThreshold ?? 1;
    this.failure = spec.failureThreshold ?? 3;
  }

  observe(result: ProbeResult): ProbeResult | undefined {
    if (result === this.last) this.run++;
    else {
      this.last = result;
      this.run = 1;
    }
    const needed = result === "Success" ? this.success : this.failure;
    return this.run >= needed ? result : undefined;
  }
}

export interface ProbeWorkerOptions {
  kind: ProbeKind;
  spec: ProbeSpec;
  /** When the container run started (initialDelaySeconds counts from there). */
  startedAt: Date;
  probe: (timeoutMs: number) => Promise<ProbeOutcome>;
  /** Whether the container counts as started (its startup probe passed, or it has none). */
  started: () => boolean;
  /** A result reached its threshold. */
  onResult: (kind: ProbeKind, result: ProbeResult) => void;
  /** Every single failure, for the Unhealthy event. */
  onFailure: (kind: ProbeKind, output: string) => void;
}

export class ProbeWorker {
  private readonly o: ProbeWorkerOptions;
  private readonly thresholds: Thresholds;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(o: ProbeWorkerOptions) {
    this.o = o;
    this.thresholds = new Thresholds(o.spec);
  }

  start(): void {
    const delayMs = (this.o.spec.initialDelaySeconds ?? 0) * 1000 - (Date.now() - this.o.startedAt.getTime());
    this.schedule(Math.max(0, delayMs));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    const periodMs = (this.o.spec.periodSeconds ?? 10) * 1000;
    const started = this.o.started();
    if (this.o.kind === "startup" && started) return this.stop();
    if (this.o.kind !== "startup" && !started) return this.schedule(periodMs);

    const outcome = await this.o.probe((this.o.spec.timeoutSeconds ?? 1) * 1000);
    if (this.stopped) return;
    if (outcome.result === "Failure") this.o.onFailure(this.o.kind, outcome.output);
    const decided = this.thresholds.observe(outcome.result);
    if (decided) {
      this.o.onResult(this.o.kind, decided);
      if (this.o.kind === "startup" || (this.o.kind === "liveness" && decided === "Failure"))
        return this.stop();
    }
    this.schedule(periodMs);
  }
}

// Writes the recovered condition and, when the write went through, records the Events that
// go with it. A replica that loses a race (409) records nothing: the winner already did.
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { PatchResult, PodApi } from "../kube/pods.ts";
import { recoveredCondition, type DesiredCondition } from "./condition.ts";
import { Reason } from "../names.ts";
import type { HandlerMetrics } from "./metrics.ts";
import { podFields } from "./pod.ts";
import { eventFor, type PodEvent } from "./pod-event.ts";
import { conditionPatch } from "./status-patch.ts";

export interface ConditionWriter {
  write(pod: V1Pod, desired: DesiredCondition, events: readonly PodEvent[]): Promise<PatchResult>;
}

export interface ConditionWriterOptions {
  pods: PodApi;
  logger: Logger;
  metrics: HandlerMetrics;
  /** This replica's name, reported on its Events. */
  instance: string;
  now?: () => Date;
}

export function conditionWriter(opts: ConditionWriterOptions): ConditionWriter {
  const now = opts.now ?? (() => new Date());
  return {
    async write(pod, desired, events) {
      const fields = { ...podFields(pod), status: desired.status, reason: desired.reason };
      const { namespace, pod: name } = podFields(pod);
      let result: PatchResult;
      try {
        result = await opts.pods.patchStatus(namespace, name, conditionPatch(pod, desired, now()));
      } catch (err) {
        opts.metrics.conditionWrite(desired.reason, "error");
        throw err;
      }
      opts.metrics.conditionWrite(desired.reason, result);
      if (result !== "patched") {
        opts.logger.debug({ ...fields, result }, "condition not written: the pod changed meanwhile");
        return result;
      }
      opts.logger.info({ ...fields, message: desired.message }, "condition written");
      const before = recoveredCondition(pod);
      if (
        desired.status === "True" &&
        (before?.reason === Reason.StateStale || before?.reason === Reason.StateConflict) &&
        before.lastTransitionTime
      ) {
        const since = new Date(before.lastTransitionTime).getTime();
        opts.metrics.staleTime(Math.max(0, (now().getTime() - since) / 1000));
      }
      for (const event of events) {
        try {
          await opts.pods.createEvent(namespace, eventFor(pod, event, now(), opts.instance));
        } catch (err) {
          // The condition is what matters; a lost Event is only a lost log line.
          opts.logger.warn(
            { ...podFields(pod), err: String(err), event: event.reason },
            "recording the Event failed",
          );
        }
      }
      return result;
    },
  };
}

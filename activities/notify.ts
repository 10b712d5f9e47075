/**
 * Notifications: one log line always; every configured webhook that selects the event
 * (notifications/); the platform's hook when set. Delivery is bounded by the notifier's deadline
 * and by this activity's own timeout, and a failure is returned and logged, never thrown: a dead
 * endpoint must not fail the promotion or hold up its cleanup. The result lands in the workflow
 * history, so the audit shows who was told and who was not.
 */
import { activityInfo, cancellationSignal } from './context';
import type { ActivityDeps } from './deps';
import type { NotifyInput } from './contracts';
import type { Delivery } from '../notifications/webhook';

export interface NotifyResult {
  deliveries: Delivery[];
}

/** Time kept back from the activity's timeout, so the result is reported before Temporal gives up. */
const MARGIN_MS = 3000;

export function notifyActivities({ logger, onNotify, notifier, workerMetrics }: ActivityDeps) {
  const log = logger.child('notify');
  return {
    async notify(input: NotifyInput): Promise<NotifyResult> {
      log.info(input.message, { model: input.model, version: input.version, event: input.event });
      const outcome = /^promotion_(.+)$/.exec(input.event)?.[1];
      const info = activityInfo();
      // A retried activity (its worker died mid-call) must not count the promotion twice.
      if (outcome && (info?.attempt ?? 1) === 1) {
        const stage = typeof input.details?.stage === 'string' ? input.details.stage : 'unknown';
        workerMetrics?.promotionEnded(input.model, outcome, stage);
      }
      let deliveries: Delivery[] = [];
      if (notifier) {
        deliveries = await notifier.send(input, {
          id: info?.workflow
            ? `${info.workflow.id}/${info.workflow.runId}/${info.activityId}`
            : `${input.model}/${input.event}/${Date.now()}`,
          ...(info?.workflow ? { workflow: info.workflow } : {}),
          signal: cancellationSignal(),
          ...(info?.msLeft !== undefined ? { withinMs: Math.max(0, info.msLeft - MARGIN_MS) } : {}),
        });
        for (const d of deliveries) workerMetrics?.notification(d.webhook, input.event, d.ok);
      }
      try {
        await onNotify?.(input);
      } catch (err) {
        log.warn('notification hook failed; the promotion carries on', { error: (err as Error).message });
      }
      return { deliveries };
    },
  };
}

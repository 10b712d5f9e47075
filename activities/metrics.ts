/**
 * The worker's own Prometheus metrics: what the promotions it runs decided and whether people
 * heard about it. One Registry per set of activities (never the global one, so tests can run
 * several); the worker serves it when `worker.metricsListen` is set (workers/metrics-endpoint.ts).
 */
import { Counter, Registry } from 'prom-client';

export interface WorkerMetrics {
  registry: Registry;
  /** A promotion ended: its outcome and the last stage it reached. */
  promotionEnded(model: string, outcome: string, stage: string): void;
  notification(webhook: string, event: string, delivered: boolean): void;
}

export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  const promotions = new Counter({
    name: 'runway_promotions_total',
    help: 'Promotions that ended, by outcome and by the last stage they reached',
    labelNames: ['model', 'outcome', 'stage'],
    registers: [registry],
  });
  const notifications = new Counter({
    name: 'runway_notifications_total',
    help: 'Webhook notifications, by webhook, event and whether they were delivered (after retries)',
    labelNames: ['webhook', 'event', 'result'],
    registers: [registry],
  });
  return {
    registry,
    promotionEnded: (model, outcome, stage) => promotions.inc({ model, outcome, stage }),
    notification: (webhook, event, delivered) =>
      notifications.inc({ webhook, event, result: delivered ? 'delivered' : 'failed' }),
  };
}

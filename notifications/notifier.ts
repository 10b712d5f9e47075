/**
 * The notifier the worker's `notify` activity calls: every configured webhook whose filters select
 * the event gets it, all in parallel, in its format, within one deadline. The platform config
 * names the webhooks (workers/config.ts `notifications`); their URLs are read from a file or an
 * environment variable so they never sit in a config printout.
 */
import type { Logger } from '../common/log';
import { selects } from './events';
import { buildNotification, formatPayload, type NotificationInput, type WebhookFormat } from './payload';
import { deliver, type Delivery, type RetryPolicy } from './webhook';

export interface WebhookConfig {
  name: string;
  format: WebhookFormat;
  /** Resolved from url, urlFile or urlEnv. A secret: never logged. */
  url: string;
  /** Event names or kinds; unset: every event. */
  events?: string[];
  /** Model names; unset: every model. */
  models?: string[];
}

export interface NotificationsConfig extends RetryPolicy {
  webhooks: WebhookConfig[];
  /** Bound on one notification, every webhook and retry included (ms). */
  deadlineMs: number;
}

export interface NotifyContext {
  id: string;
  workflow?: { id: string; runId: string };
  /** Cancellation of the activity. */
  signal?: AbortSignal;
  /** A tighter bound than the configured deadline, e.g. the activity's own timeout (ms from now). */
  withinMs?: number;
}

export interface Notifier {
  readonly webhooks: readonly string[];
  send(input: NotificationInput, ctx: NotifyContext): Promise<Delivery[]>;
}

export function createNotifier(config: NotificationsConfig, logger: Logger): Notifier {
  const log = logger.child('webhook');
  return {
    webhooks: config.webhooks.map((w) => w.name),
    async send(input, ctx) {
      const chosen = config.webhooks.filter(
        (w) => selects(w.events, input.event) && (!w.models?.length || w.models.includes(input.model)),
      );
      if (chosen.length === 0) return [];
      const notification = buildNotification(input, { id: ctx.id, at: new Date(), workflow: ctx.workflow });
      const deadline = Date.now() + Math.min(config.deadlineMs, ctx.withinMs ?? Infinity);
      const results = await Promise.all(
        chosen.map((w) =>
          deliver(
            w,
            JSON.stringify(formatPayload(w.format, notification)),
            // Receivers of runway's own format can deduplicate retries on it.
            w.format === 'json' ? { 'idempotency-key': notification.id } : {},
            config,
            deadline,
            ctx.signal,
          ),
        ),
      );
      for (const r of results) {
        const fields = {
          webhook: r.webhook,
          event: input.event,
          model: input.model,
          attempts: r.attempts,
          ms: r.ms,
        };
        if (r.ok) log.info('notification delivered', { ...fields, status: r.status });
        else log.warn('notification not delivered; the promotion carries on', { ...fields, error: r.error });
      }
      return results;
    },
  };
}

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

/** The ModelSpec's `notify` section: which webhooks and events a model's notifications go to. */
export interface SpecRoute {
  webhooks?: string[];
  events?: string[];
}

export interface Notifier {
  readonly webhooks: readonly string[];
  send(input: NotificationInput & { route?: SpecRoute }, ctx: NotifyContext): Promise<Delivery[]>;
}

export function createNotifier(config: NotificationsConfig, logger: Logger): Notifier {
  const log = logger.child('webhook');
  return {
    webhooks: config.webhooks.map((w) => w.name),
    async send(input: NotificationInput & { route?: SpecRoute }, ctx) {
      // The spec narrows (route), the platform config's filters narrow further.
      const route = input.route;
      if (route?.events?.length && !selects(route.events, input.event)) return [];
      const named = route?.webhooks
        ? config.webhooks.filter((w) => route.webhooks!.includes(w.name))
        : config.webhooks;
      const chosen = named.filter(
        (w) => selects(w.events, input.event) && (!w.models?.length || w.models.includes(input.model)),
      );
      // A name in the spec that the platform does not configure: said where people look, not thrown.
      const unknown: Delivery[] = (route?.webhooks ?? [])
        .filter((name) => !config.webhooks.some((w) => w.name === name))
        .map((name) => ({
          webhook: name,
          ok: false,
          attempts: 0,
          error: `the spec's notify.webhooks names "${name}", which the platform config does not have (notifications.webhooks: ${config.webhooks.map((w) => w.name).join(', ') || 'none'})`,
          ms: 0,
        }));
      if (chosen.length === 0) {
        for (const u of unknown)
          log.warn('notification not delivered', { webhook: u.webhook, error: u.error });
        return unknown;
      }
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
      results.push(...unknown);
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

/**
 * What a webhook receives. `json`: runway's own payload, versioned (`schema`), described by
 * docs/notification.schema.json (generated from NotificationSchema below). `slack` and `teams`:
 * the same facts shaped for a Slack incoming webhook (Block Kit) and a Microsoft Teams webhook
 * (an Adaptive Card message, what Teams' Workflows and incoming webhooks accept).
 */
import { z } from 'zod';
import { NOTIFICATION_KINDS, SEVERITIES, eventInfo } from './events';

export const SCHEMA_ID = 'runway.notification/v1';
export const WEBHOOK_FORMATS = ['json', 'slack', 'teams'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

export const NotificationSchema = z
  .object({
    schema: z.literal(SCHEMA_ID).describe('payload version; a breaking change gets a new one'),
    id: z
      .string()
      .min(1)
      .describe('the same for every retry of one notification (workflow, run, activity): deduplicate on it'),
    event: z.string().min(1).describe('what happened, e.g. promotion_rolled_back (docs/notifications.md)'),
    kind: z.enum(NOTIFICATION_KINDS).describe('the stable category receivers switch on'),
    severity: z.enum(SEVERITIES),
    title: z.string().describe('one line for people: "fraud-detector v5 rolled back"'),
    message: z.string().describe('the reason, with its numbers'),
    model: z.string().min(1),
    version: z.string().min(1),
    at: z.iso.datetime().describe('when runway sent it (ISO 8601, UTC)'),
    workflow: z
      .object({ id: z.string(), runId: z.string() })
      .strict()
      .optional()
      .describe('the promotion (or rollback) workflow, to find it in the Temporal UI or `runway audit`'),
    details: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('event-specific numbers: weights, burn rates and windows, PSI per feature, …'),
  })
  .strict();
export type Notification = z.infer<typeof NotificationSchema>;

export interface NotificationInput {
  model: string;
  version: string;
  event: string;
  message: string;
  details?: Record<string, unknown>;
}

export function buildNotification(
  input: NotificationInput,
  ctx: { id: string; at: Date; workflow?: { id: string; runId: string } },
): Notification {
  const info = eventInfo(input.event);
  return {
    schema: SCHEMA_ID,
    id: ctx.id,
    event: input.event,
    kind: info.kind,
    severity: info.severity,
    title: `${input.model} v${input.version} ${info.headline}`,
    message: input.message,
    model: input.model,
    version: input.version,
    at: ctx.at.toISOString(),
    ...(ctx.workflow ? { workflow: ctx.workflow } : {}),
    ...(input.details && Object.keys(input.details).length ? { details: input.details } : {}),
  };
}

/** Details as short `name: value` facts for chat cards: nested values compact, long ones cut. */
export function facts(n: Notification, max = 12): Array<{ title: string; value: string }> {
  const out = [
    { title: 'model', value: n.model },
    { title: 'version', value: n.version },
    { title: 'event', value: n.event },
  ];
  if (n.workflow) out.push({ title: 'workflow', value: n.workflow.id });
  for (const [key, value] of Object.entries(n.details ?? {})) {
    if (out.length >= max) break;
    if (value === undefined) continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    out.push({ title: key, value: text.length > 300 ? `${text.slice(0, 297)}...` : text });
  }
  return out;
}

const slackEmoji = { info: ':information_source:', warning: ':warning:', critical: ':rotating_light:' };

/** Slack incoming webhook: `text` is the notification fallback, blocks the message. */
export function slackPayload(n: Notification): Record<string, unknown> {
  const fields = facts(n).map((f) => ({ type: 'mrkdwn', text: `*${f.title}*\n${f.value}` }));
  return {
    text: `${n.title}: ${n.message}`,
    blocks: [
      {
        type: 'section',
        text: { type: 'mrkdwn', text: `${slackEmoji[n.severity]} *${n.title}*\n${n.message}` },
      },
      // Slack allows at most 10 fields in a section.
      { type: 'section', fields: fields.slice(0, 10) },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `runway · ${n.kind} · ${n.at}` }] },
    ],
  };
}

const teamsColor = { info: 'Default', warning: 'Warning', critical: 'Attention' };

/** Microsoft Teams: a message carrying one Adaptive Card (1.4). */
export function teamsPayload(n: Notification): Record<string, unknown> {
  return {
    type: 'message',
    summary: n.title,
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            {
              type: 'TextBlock',
              text: n.title,
              weight: 'Bolder',
              size: 'Medium',
              color: teamsColor[n.severity],
              wrap: true,
            },
            { type: 'TextBlock', text: n.message, wrap: true },
            { type: 'FactSet', facts: facts(n) },
            { type: 'TextBlock', text: `runway · ${n.kind} · ${n.at}`, isSubtle: true, size: 'Small' },
          ],
        },
      },
    ],
  };
}

export function formatPayload(format: WebhookFormat, n: Notification): Record<string, unknown> {
  if (format === 'slack') return slackPayload(n);
  if (format === 'teams') return teamsPayload(n);
  return n;
}

/** The JSON Schema of the `json` format, as committed in docs/notification.schema.json. */
export function notificationJsonSchema(): Record<string, unknown> {
  return {
    title: 'runway notification (v1)',
    ...(z.toJSONSchema(NotificationSchema, { io: 'output' }) as Record<string, unknown>),
  };
}

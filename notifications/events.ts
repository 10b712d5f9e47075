/**
 * The events runway notifies about, as the workflows name them in their `notify` calls, each
 * with the kind a webhook can subscribe to and how loud it is. Receivers switch on `kind` (a
 * short, stable list); `event` says exactly what happened.
 */

export const NOTIFICATION_KINDS = [
  'approval_requested',
  'paused',
  'rolled_back',
  'promoted',
  'watch_alert',
  'drift',
  'rejected',
  'expired',
  'cancelled',
  'failed',
  'signal_ignored',
  'other',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

interface EventInfo {
  kind: NotificationKind;
  severity: Severity;
  /** Headline after "<model> v<version>": `rolled back`. */
  headline: string;
}

export const NOTIFICATION_EVENTS = {
  approval_requested: { kind: 'approval_requested', severity: 'info', headline: 'waits for approval' },
  paused_inconclusive: {
    kind: 'paused',
    severity: 'warning',
    headline: 'paused: analysis inconclusive, a human decides',
  },
  promotion_promoted: { kind: 'promoted', severity: 'info', headline: 'promoted to 100%' },
  promotion_rolled_back: { kind: 'rolled_back', severity: 'critical', headline: 'rolled back' },
  /** `runway rollback` with no promotion in flight: the `previous` version restored. */
  rollback_done: { kind: 'rolled_back', severity: 'critical', headline: 'restored by a rollback' },
  /** After graduation, while the old version still runs. */
  rollback_after_graduation: {
    kind: 'rolled_back',
    severity: 'critical',
    headline: 'rolled back after graduation',
  },
  /** The watch after graduation: an SLO burn-rate alert (page or ticket), with its numbers. */
  watch_alert: { kind: 'watch_alert', severity: 'critical', headline: 'watch alert: SLO burn rate' },
  /** The watch after graduation: input or prediction drift beyond the spec's PSI threshold. */
  drift: { kind: 'drift', severity: 'warning', headline: 'drift detected' },
  promotion_rejected: { kind: 'rejected', severity: 'warning', headline: 'rejected' },
  promotion_expired: { kind: 'expired', severity: 'warning', headline: 'approval expired' },
  promotion_cancelled: { kind: 'cancelled', severity: 'warning', headline: 'promotion cancelled' },
  promotion_failed: { kind: 'failed', severity: 'critical', headline: 'promotion failed' },
  approval_ignored: { kind: 'signal_ignored', severity: 'info', headline: 'ignored an approval' },
  rejection_ignored: { kind: 'signal_ignored', severity: 'info', headline: 'ignored a rejection' },
} as const satisfies Record<string, EventInfo>;
export type NotificationEvent = keyof typeof NOTIFICATION_EVENTS;

/** What an event is; one the catalogue does not know yet is still delivered, as kind `other`. */
export function eventInfo(event: string): EventInfo {
  const known = (NOTIFICATION_EVENTS as Record<string, EventInfo>)[event];
  return known ?? { kind: 'other', severity: 'info', headline: event.replace(/_/g, ' ') };
}

/** True when a webhook's `events` filter (event names or kinds) selects this event. */
export function selects(filter: readonly string[] | undefined, event: string): boolean {
  if (!filter || filter.length === 0) return true;
  return filter.includes(event) || filter.includes(eventInfo(event).kind);
}

/** Every name an `events` filter may hold. */
export const FILTER_NAMES: readonly string[] = [
  ...new Set([...Object.keys(NOTIFICATION_EVENTS), ...NOTIFICATION_KINDS]),
];

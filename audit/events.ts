/**
 * Reading raw Temporal history events: payloads, timestamps and failures. Kept apart from the
 * report so the builder reads like the audit it produces.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';

export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
export type History = temporal.api.history.v1.IHistory;
type Payload = temporal.api.common.v1.IPayload;
type Failure = temporal.api.failure.v1.IFailure;

/** ISO time of an event; '' when the server recorded none (never in practice). */
export function eventTime(e: HistoryEvent): string {
  const t = e.eventTime;
  if (!t) return '';
  // seconds is a Long from the wire and a number or string from JSON histories.
  const ms = Number(String(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
  return new Date(ms).toISOString();
}

export function eventId(e: HistoryEvent): number {
  return Number(e.eventId ?? 0);
}

/**
 * A payload as a value. Undecodable payloads (binary, encrypted by a codec) become a marker, not
 * an exception: an audit must still show everything else in the history.
 */
export function decode(p: Payload | null | undefined): unknown {
  if (!p) return undefined;
  try {
    // The proto's payload type and the converter's differ only in nullability of metadata.
    return defaultPayloadConverter.fromPayload(
      p as Parameters<typeof defaultPayloadConverter.fromPayload>[0],
    );
  } catch (err) {
    return { undecodable: err instanceof Error ? err.message : String(err) };
  }
}

/** The first argument of an activity, signal or update, or its single result. */
export function first(payloads: { payloads?: Payload[] | null } | null | undefined): unknown {
  return decode(payloads?.payloads?.[0]);
}

/** A failure's message with its causes, root cause last: "activity failed: sha256 mismatch". */
export function failureMessage(f: Failure | null | undefined): string {
  const parts: string[] = [];
  for (let cur = f; cur && parts.length < 8; cur = cur.cause) {
    const m = cur.message ?? '';
    const type = cur.activityFailureInfo?.activityType?.name;
    parts.push(type ? `${type}: ${m}` : m);
  }
  return parts.filter(Boolean).join(' ← ');
}

/** The details payload of an ApplicationFailure (the workflow puts its PromotionResult there). */
export function failureDetails(f: Failure | null | undefined): unknown {
  return first(f?.applicationFailureInfo?.details);
}

/** Keyword search attributes set on start or upserted, decoded. */
export function searchAttributes(
  fields: Record<string, Payload> | null | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields ?? {})) out[k] = decode(v);
  return out;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * `POST /v1/feedback`: a reward for a request (by its OIP id) or a unit (the sticky header),
 * credited to the variant that served it. The experiment decides on these numbers, so the desk
 * trusts nothing: the reward must fit the route's declared shape, each request or unit window
 * earns one reward (a repeat is refused and the first kept), and a route with a feedback token
 * takes rewards only from whoever holds it. Every refusal is counted by reason, so the analysis
 * can notice a variant whose feedback is being tampered with.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { requestKey, unitKey, type AssignmentMemory, type Slot } from './assignments';
import type { RouterMetrics } from './metrics';
import type { RewardShape, Route } from './route';

export type RejectReason =
  | 'malformed'
  | 'no_route'
  | 'unauthorized'
  | 'forbidden'
  | 'non_finite'
  | 'out_of_shape'
  | 'unknown_assignment'
  | 'duplicate';

/** Reasons that name a variant: the ones the analysis counts against a variant's feedback. */
export const VARIANT_REASONS: readonly RejectReason[] = ['duplicate', 'non_finite', 'out_of_shape'];

export interface FeedbackAnswer {
  status: number;
  body: Record<string, unknown>;
}

interface FeedbackBody {
  model: string;
  requestId?: string;
  unit?: string;
  reward: number;
}

/** The shape a route without one gets: every reward the analysis could use before shapes existed. */
const LEGACY: { bounded: { min: number; max: number } } = { bounded: { min: 0, max: 1 } };

/** Why `reward` does not fit `shape`, or undefined when it does. */
export function outOfShape(shape: RewardShape | undefined, reward: number): string | undefined {
  if (shape === 'binary') {
    return reward === 0 || reward === 1
      ? undefined
      : `reward ${reward} is not 0 or 1 (the route's reward shape is binary)`;
  }
  const { min, max } = (shape ?? LEGACY).bounded;
  if (reward >= min && reward <= max) return undefined;
  return shape
    ? `reward ${reward} is outside the route's bounds: expected ${min} ≤ reward ≤ ${max}`
    : `reward ${reward} is outside 0 … 1 (the route declares no reward shape; set experiment.reward in the ModelSpec for other bounds)`;
}

/** The reward on [0, 1], the scale the counters and the analysis use (bounded: (r − min) / (max − min)). */
export function scaled(shape: RewardShape | undefined, reward: number): number {
  if (shape === 'binary') return reward;
  const { min, max } = (shape ?? LEGACY).bounded;
  return (reward - min) / (max - min);
}

/** Constant-time comparison of a presented token with a route's digest. */
function digestMatches(expectedHex: string, presented: string): boolean {
  const a = Buffer.from(expectedHex, 'hex');
  const b = createHash('sha256').update(presented).digest();
  return a.length === b.length && timingSafeEqual(a, b);
}

function parseBody(doc: unknown): FeedbackBody | string {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return '(body): expected a JSON object';
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    if (!['model', 'requestId', 'unit', 'reward'].includes(key))
      return `${key}: unknown field (expected model, requestId or unit, reward)`;
  }
  if (typeof d.model !== 'string' || d.model === '') return 'model: expected a model name';
  for (const key of ['requestId', 'unit'] as const) {
    const v = d[key];
    if (v !== undefined && (typeof v !== 'string' || v === '' || v.length > 1024))
      return `${key}: expected a non-empty string of at most 1024 characters`;
  }
  if ((d.requestId === undefined) === (d.unit === undefined))
    return '(body): expected exactly one of "requestId" or "unit"';
  if (typeof d.reward !== 'number') return 'reward: expected a number';
  return d as unknown as FeedbackBody;
}

export interface FeedbackDesk {
  /** Judges one feedback body; never throws for anything a client sends. */
  receive(doc: unknown, headers: IncomingHttpHeaders): FeedbackAnswer;
  /** Counts a body that could not even be read (too large, not JSON). */
  malformed(message: string): FeedbackAnswer;
}

export function feedbackDesk(
  routeOf: (model: string) => Route | undefined,
  memory: AssignmentMemory,
  metrics: RouterMetrics,
): FeedbackDesk {
  const refuse = (
    status: number,
    reason: RejectReason,
    error: string,
    labels: { model?: string; variant?: string } = {},
    extra: Record<string, unknown> = {},
  ): FeedbackAnswer => {
    metrics.feedbackRejected.inc({ model: labels.model ?? '', variant: labels.variant ?? '', reason });
    return { status, body: { error, reason, ...extra } };
  };

  return {
    malformed: (message) => refuse(400, 'malformed', `invalid feedback: ${message}`),

    receive(doc, headers) {
      const parsed = parseBody(doc);
      if (typeof parsed === 'string') {
        // Labelled with the model only when it has a route: refused bodies must not mint label values.
        const named = (doc as { model?: unknown } | null)?.model;
        const model = typeof named === 'string' && routeOf(named) ? named : undefined;
        return refuse(400, 'malformed', `invalid feedback: ${parsed}`, { model });
      }
      const f = parsed;
      const route = routeOf(f.model);
      if (!route) return refuse(404, 'no_route', `no route for model "${f.model}"`);
      const model = f.model;

      if (route.feedback) {
        const auth = headers.authorization;
        if (typeof auth !== 'string' || !auth.startsWith('Bearer ') || auth.slice(7).trim() === '') {
          return refuse(
            401,
            'unauthorized',
            `feedback for model "${model}" needs "Authorization: Bearer <token>" with the model's feedback token`,
            { model },
          );
        }
        if (!digestMatches(route.feedback.tokenSha256, auth.slice(7).trim())) {
          return refuse(403, 'forbidden', `the feedback token is not the one for model "${model}"`, {
            model,
          });
        }
      }

      const what = f.requestId !== undefined ? `request "${f.requestId}"` : `unit "${f.unit}"`;
      const key = f.requestId !== undefined ? requestKey(model, f.requestId) : unitKey(model, f.unit!);
      const slot: Slot | undefined = memory.recall(key);
      const variant = slot?.variant;
      if (!Number.isFinite(f.reward)) {
        return refuse(400, 'non_finite', `invalid feedback: reward: expected a finite number`, {
          model,
          variant,
        });
      }
      const bad = outOfShape(route.reward, f.reward);
      if (bad) return refuse(400, 'out_of_shape', `invalid feedback: ${bad}`, { model, variant });
      if (!slot) {
        return refuse(
          404,
          'unknown_assignment',
          `no recent assignment for ${what} of model "${model}" (unknown, or older than the memory keeps)`,
          { model },
        );
      }
      if (slot.reward !== undefined) {
        return refuse(
          409,
          'duplicate',
          `${what} of model "${model}" already has a reward (${slot.reward}); the first is kept`,
          { model, variant },
          { model, variant: slot.variant, reward: slot.reward },
        );
      }
      memory.reward(key, f.reward);
      metrics.rewards.inc({ model, variant: slot.variant });
      metrics.rewardSum.inc({ model, variant: slot.variant }, scaled(route.reward, f.reward));
      return { status: 200, body: { model, variant: slot.variant, reward: f.reward } };
    },
  };
}

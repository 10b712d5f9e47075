/**
 * Synthetic traffic for the demo and for tests: OIP v2 infer requests for one model through the
 * router at a target rate with bounded concurrency, each from a user of a fixed population (the
 * sticky unit header), followed by feedback that rewards a correct decision (score ≥ 0.5 matching
 * the row's true label). The better model therefore earns more reward on merit.
 *
 * Open loop: requests leave on a schedule, not when the previous one returns. When the
 * concurrency bound is full at a due time the request is skipped and counted, so a slow model
 * never causes a burst later. It stops by itself after `durationMs` or `maxRequests`.
 */
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { createRng, createRowSampler, FEATURE_COUNT, trueLabel, type LabeledRow } from './dataset';

export const UNIT_HEADER = 'x-runway-unit';
export const VARIANT_HEADER = 'x-runway-variant';

export interface TrafficOptions {
  /** Router base URL, e.g. http://127.0.0.1:8080 (no trailing path). */
  baseUrl: string;
  model: string;
  /** Target requests per second. */
  rps: number;
  /** At most this many infer requests in flight (default 16). */
  concurrency?: number;
  /** Size of the user population; each request comes from `user-<n>`, n in [0, users) (default 1000). */
  users?: number;
  /** Seeds the rows and the users (default 1). */
  seed?: number;
  /** Post rewards to `/v1/feedback` after each successful answer (default true). */
  feedback?: boolean;
  /** The model's feedback token, sent as `Authorization: Bearer` when the platform sets one. */
  feedbackToken?: string;
  /** Stop by itself after this long (default 30 minutes: a bound so a forgotten generator ends). */
  durationMs?: number;
  /** Stop by itself after sending this many requests (default: no bound besides the duration). */
  maxRequests?: number;
  /** More request headers, e.g. a blue-green preview header (`x-runway-preview: qa`). */
  headers?: Record<string, string>;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** Called for transport failures and unreadable answers (HTTP error statuses are only counted). */
  onError?: (err: Error) => void;
  /** The drift knob: shifted features from the start (change it later with `setDrift`). */
  drift?: TrafficDrift;
}

/**
 * A covariate shift: `shift` added to feature `feature` of every row (the features are standard
 * normal, so the shift is in standard deviations). Labels follow the world's rule on the shifted
 * rows, so rewards stay truthful.
 */
export interface TrafficDrift {
  feature: number;
  shift: number;
}

export interface VariantStats {
  /** Answers received that carried this variant. */
  requests: number;
  ok: number;
  failed: number;
  /** Successful answers whose decision matched the true label (reward 1). */
  correct: number;
}

export interface TrafficStats {
  sent: number;
  completed: number;
  /** Due requests not sent because `concurrency` were already in flight. */
  skipped: number;
  /** Count per HTTP status ("200", "503", ...), plus "error" for transport failures. */
  byStatus: Record<string, number>;
  /** Count per `x-runway-variant` response header ("unknown" when absent). */
  byVariant: Record<string, VariantStats>;
  feedback: { sent: number; failed: number };
}

export interface TrafficHandle {
  stats(): TrafficStats;
  /** Stops sending, waits for in-flight requests and feedback, closes connections. */
  stop(): Promise<TrafficStats>;
  /** Resolves when the generator stops (by itself or by `stop()`). */
  readonly done: Promise<TrafficStats>;
  /** Turns the drift knob (undefined: back to the evaluation data's distribution). */
  setDrift(drift: TrafficDrift | undefined): void;
}

/** Parses an OIP v2 infer response body and returns the first value of output `score`. */
export function scoreFromResponse(body: unknown): number {
  const outputs = (body as { outputs?: unknown })?.outputs;
  if (!Array.isArray(outputs)) throw new Error('infer response: "outputs" is not an array');
  const out =
    (outputs as { name?: unknown; data?: unknown }[]).find((o) => o?.name === 'score') ?? outputs[0];
  const data = (out as { data?: unknown } | undefined)?.data;
  const first = Array.isArray(data) ? (data.flat(Infinity)[0] as unknown) : undefined;
  if (typeof first !== 'number') throw new Error('infer response: output "score" has no numeric data');
  return first;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0)
    throw new Error(`startTraffic: ${name} must be a positive number, got ${v}`);
  return v;
}

export function startTraffic(opts: TrafficOptions): TrafficHandle {
  const rps = positive('rps', opts.rps, 0);
  const concurrency = Math.floor(positive('concurrency', opts.concurrency, 16));
  const users = Math.floor(positive('users', opts.users, 1000));
  const durationMs = positive('durationMs', opts.durationMs, 30 * 60_000);
  const maxRequests =
    opts.maxRequests === undefined ? Infinity : positive('maxRequests', opts.maxRequests, 1);
  const timeoutMs = positive('timeoutMs', opts.timeoutMs, 10_000);
  let base: URL;
  try {
    base = new URL(opts.baseUrl);
  } catch {
    throw new Error(`startTraffic: baseUrl is not a URL: ${JSON.stringify(opts.baseUrl)}`);
  }
  const inferUrl = new URL(`/v2/models/${encodeURIComponent(opts.model)}/infer`, base).toString();
  const feedbackUrl = new URL('/v1/feedback', base).toString();
  const seed = opts.seed ?? 1;
  let drift = checkDrift(opts.drift);
  const nextRow = createRowSampler(seed);
  const userRng = createRng(seed ^ 0x5eed);
  // Ids are unique across generators and runs: the router joins feedback to the variant by id.
  const idPrefix = `traffic-${randomUUID().slice(0, 8)}`;
  const agent = new Agent({ connections: concurrency + 4, keepAliveTimeout: 10_000 });
  const feedbackOn = opts.feedback !== false;
  const feedbackHeaders: Record<string, string> = {
    'content-type': 'application/json',
    ...(opts.feedbackToken ? { authorization: `Bearer ${opts.feedbackToken}` } : {}),
  };

  const stats: TrafficStats = {
    sent: 0,
    completed: 0,
    skipped: 0,
    byStatus: {},
    byVariant: {},
    feedback: { sent: 0, failed: 0 },
  };
  const pending = new Set<Promise<void>>();
  let inFlight = 0;
  let stopped = false;
  const started = performance.now();
  const report = (err: unknown): void => opts.onError?.(err instanceof Error ? err : new Error(String(err)));
  const variant = (name: string): VariantStats =>
    (stats.byVariant[name] ??= { requests: 0, ok: 0, failed: 0, correct: 0 });
  const count = (status: string): void => {
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
  };

  async function postFeedback(requestId: string, reward: 0 | 1): Promise<void> {
    try {
      const res = await request(feedbackUrl, {
        method: 'POST',
        dispatcher: agent,
        headers: feedbackHeaders,
        body: JSON.stringify({ model: opts.model, requestId, reward }),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) stats.feedback.sent++;
      else stats.feedback.failed++;
    } catch (err) {
      stats.feedback.failed++;
      report(err);
    }
  }

  async function sendOne(): Promise<void> {
    const seq = stats.sent++;
    const id = `${idPrefix}-${seq}`;
    const row = drifted(nextRow(), drift);
    const user = `user-${userRng.int(users)}`;
    const body = JSON.stringify({
      id,
      inputs: [{ name: 'features', shape: [1, FEATURE_COUNT], datatype: 'FP32', data: row.features }],
    });
    try {
      const res = await request(inferUrl, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', [UNIT_HEADER]: user, ...opts.headers },
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const header = res.headers[VARIANT_HEADER];
      const v = variant((Array.isArray(header) ? header[0] : header) ?? 'unknown');
      v.requests++;
      count(String(res.statusCode));
      if (res.statusCode < 200 || res.statusCode >= 300) {
        v.failed++;
        await res.body.dump();
        return;
      }
      let decision: 0 | 1;
      try {
        decision = scoreFromResponse(await res.body.json()) >= 0.5 ? 1 : 0;
      } catch (err) {
        v.failed++;
        report(err);
        return;
      }
      v.ok++;
      const reward = decision === row.label ? 1 : 0;
      v.correct += reward;
      if (feedbackOn) await postFeedback(id, reward);
    } catch (err) {
      count('error');
      report(err);
    } finally {
      stats.completed++;
    }
  }

  let resolveDone!: (s: TrafficStats) => void;
  const done = new Promise<TrafficStats>((r) => (resolveDone = r));
  let finishing: Promise<TrafficStats> | undefined;
  const finish = (): Promise<TrafficStats> => {
    finishing ??= (async () => {
      stopped = true;
      clearInterval(timer);
      while (pending.size > 0) await Promise.allSettled([...pending]);
      await agent.close();
      const final = snapshot();
      resolveDone(final);
      return final;
    })();
    return finishing;
  };

  // A 5 ms tick is fine-grained enough for the demo's rates and cheap on a shared machine.
  let issued = 0;
  const tick = (): void => {
    if (stopped) return;
    const elapsed = performance.now() - started;
    if (elapsed >= durationMs || issued >= maxRequests) {
      void finish();
      return;
    }
    let due = Math.min(Math.floor((elapsed / 1000) * rps), maxRequests) - issued;
    while (due > 0) {
      due--;
      issued++;
      if (inFlight >= concurrency) {
        stats.skipped++;
        continue;
      }
      inFlight++;
      const p: Promise<void> = sendOne().finally(() => {
        inFlight--;
        pending.delete(p);
      });
      pending.add(p);
    }
  };
  const timer = setInterval(tick, 5);
  tick();

  function snapshot(): TrafficStats {
    return structuredClone(stats);
  }

  return { stats: snapshot, stop: finish, done, setDrift: (d) => (drift = checkDrift(d)) };
}

function checkDrift(d: TrafficDrift | undefined): TrafficDrift | undefined {
  if (!d) return undefined;
  if (!Number.isInteger(d.feature) || d.feature < 0 || d.feature >= FEATURE_COUNT)
    throw new Error(`drift: feature must be 0..${FEATURE_COUNT - 1}, got ${d.feature}`);
  if (!Number.isFinite(d.shift)) throw new Error(`drift: shift must be a finite number, got ${d.shift}`);
  return d;
}

function drifted(row: LabeledRow, d: TrafficDrift | undefined): LabeledRow {
  if (!d || d.shift === 0) return row;
  const features = [...row.features];
  features[d.feature] = Math.round((features[d.feature]! + d.shift) * 1e4) / 1e4;
  return { features, label: trueLabel(features) };
}

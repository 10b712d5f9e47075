/**
 * The router's Prometheus metrics, in its own Registry (several routers in one test process must
 * not share series). Names and buckets come from route.ts: the MetricsSource implementations
 * read exactly these.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { VARIANT_REASONS } from './feedback';
import { latencyBuckets, routerMetrics } from './route';
import type { ComparisonDetail } from './compare';
import { BoundCounter, BoundHistogram, register } from '../metrics/bound-series';

/** Seconds since the epoch when this router started; a change tells a reader the counters reset. */
export const startTimeMetric = 'runway_router_start_time_seconds';

/** The access series (only with an API keys file; absent from routerMetrics, which the analysis reads). */
export const accessMetrics = {
  access: 'runway_router_access_total',
  apiKeys: 'runway_router_api_keys',
  apiKeyReloads: 'runway_router_api_key_reloads_total',
} as const;

export type CodeClass = '2xx' | '4xx' | '5xx';

export interface VariantInstruments {
  requests: Record<CodeClass, { inc(value?: number): void }>;
  duration: { observe(value: number): void };
}

export class RouterMetrics {
  readonly registry = new Registry();
  readonly startTime: Gauge;
  /** Requests and latency per variant, bound once per variant (bound-series.ts). */
  readonly requests: BoundCounter;
  readonly duration: BoundHistogram;
  readonly upstreamErrors: Counter<'model' | 'variant' | 'reason'>;
  readonly failovers: Counter<'model' | 'from' | 'to' | 'reason'>;
  readonly mirrored: Counter<'model' | 'variant'>;
  readonly mirrorDropped: Counter<'model' | 'variant'>;
  readonly shadowComparisons: Counter<'model' | 'variant' | 'result'>;
  readonly shadowMoves: Counter<'model' | 'variant' | 'direction'>;
  readonly shadowDecisions: Counter<'model' | 'variant' | 'result'>;
  readonly shadowDuration: Histogram<'model' | 'variant'>;
  readonly rewards: Counter<'model' | 'variant'>;
  readonly rewardSum: Counter<'model' | 'variant'>;
  readonly feedbackRejected: Counter<'model' | 'variant' | 'reason'>;
  /** Front-door verdicts with API keys on (access.ts); `key_id` is the file's id, never the key. */
  readonly access: Counter<'key_id' | 'model' | 'outcome'>;
  readonly apiKeys: Gauge;
  readonly apiKeyReloads: Counter<'result'>;
  /** The epoch as written into snapshots: the start time in milliseconds, as a string. */
  readonly epoch: string;

  constructor(startedAtMs = Date.now()) {
    const registers = [this.registry];
    this.epoch = String(startedAtMs);
    this.startTime = new Gauge({
      name: startTimeMetric,
      help: 'Start time of this router (epoch seconds)',
      registers,
    });
    this.startTime.set(startedAtMs / 1000);
    this.requests = new BoundCounter(
      routerMetrics.requests,
      'Requests answered, by variant and status class',
    );
    this.duration = new BoundHistogram(
      routerMetrics.duration,
      'Time from request received to response sent (seconds)',
      latencyBuckets,
    );
    register(this.registry, this.requests, this.duration);
    this.upstreamErrors = new Counter({
      name: routerMetrics.upstreamErrors,
      help: 'Requests that failed to reach or hear from an upstream, by reason',
      labelNames: ['model', 'variant', 'reason'],
      registers,
    });
    this.failovers = new Counter({
      name: routerMetrics.failovers,
      help: 'Requests retried on another replica or variant after an attempt that never produced an answer',
      labelNames: ['model', 'from', 'to', 'reason'],
      registers,
    });
    this.mirrored = new Counter({
      name: routerMetrics.mirrored,
      help: 'Copies of requests sent to the shadow variant',
      labelNames: ['model', 'variant'],
      registers,
    });
    this.mirrorDropped = new Counter({
      name: routerMetrics.mirrorDropped,
      help: 'Copies not sent because the mirror concurrency bound was full',
      labelNames: ['model', 'variant'],
      registers,
    });
    this.shadowComparisons = new Counter({
      name: routerMetrics.shadowComparisons,
      help: 'Shadow answers compared with the primary, by result',
      labelNames: ['model', 'variant', 'result'],
      registers,
    });
    this.shadowMoves = new Counter({
      name: routerMetrics.shadowMoves,
      help: 'Shadow output elements that moved up or down against the primary beyond the tolerance, or stayed',
      labelNames: ['model', 'variant', 'direction'],
      registers,
    });
    this.shadowDecisions = new Counter({
      name: routerMetrics.shadowDecisions,
      help: "Shadow decisions at the route's threshold: held, or flipped to positive or to negative",
      labelNames: ['model', 'variant', 'result'],
      registers,
    });
    this.shadowDuration = new Histogram({
      name: routerMetrics.shadowDuration,
      help: 'Latency of shadow answers (seconds)',
      labelNames: ['model', 'variant'],
      buckets: latencyBuckets,
      registers,
    });
    this.rewards = new Counter({
      name: routerMetrics.rewards,
      help: 'Feedback events attributed to a variant',
      labelNames: ['model', 'variant'],
      registers,
    });
    this.rewardSum = new Counter({
      name: routerMetrics.rewardSum,
      help: 'Sum of rewards attributed to a variant, each scaled to [0, 1] by the route reward shape',
      labelNames: ['model', 'variant'],
      registers,
    });
    this.feedbackRejected = new Counter({
      name: routerMetrics.feedbackRejected,
      help: 'Feedback refused, by reason (variant set when the refused reward names an assignment)',
      labelNames: ['model', 'variant', 'reason'],
      registers,
    });
    this.access = new Counter({
      name: accessMetrics.access,
      help: 'Front-door requests by API key id, model and verdict (model empty when it has no route)',
      labelNames: ['key_id', 'model', 'outcome'],
      registers,
    });
    this.apiKeys = new Gauge({
      name: accessMetrics.apiKeys,
      help: 'API keys in force',
      registers,
    });
    this.apiKeyReloads = new Counter({
      name: accessMetrics.apiKeyReloads,
      help: 'Reads of the API keys file: loaded, or failed (the previous keys stay in force)',
      labelNames: ['result'],
      registers,
    });
  }

  /** Series each histogram already has: prom-client's zero() resets a series, so it runs once each. */
  private readonly zeroed = new Map<Histogram<'model' | 'variant'>, Set<string>>();

  private zeroOnce(h: Histogram<'model' | 'variant'>, model: string, variant: string): void {
    const key = `${model}\0${variant}`;
    const done = this.zeroed.get(h) ?? new Set<string>();
    this.zeroed.set(h, done);
    if (done.has(key)) return;
    done.add(key);
    h.zero({ model, variant });
  }

  /**
   * Creates zero series for a route's variants, so a reader sees them before their first request.
   * Every route change calls this, so it must never reset what a variant has already counted:
   * readers diff cumulative counters, and a reset reads as missing data.
   */
  initVariant(model: string, variant: string): void {
    this.instruments(model, variant);
    this.rewards.inc({ model, variant }, 0);
    this.rewardSum.inc({ model, variant }, 0);
    for (const reason of VARIANT_REASONS) this.feedbackRejected.inc({ model, variant, reason }, 0);
  }

  /** The hot path's instruments: labels resolved once per route, not per request. */
  instruments(model: string, variant: string): VariantInstruments {
    const code = (code_class: CodeClass) => this.requests.child({ model, variant, code_class });
    return {
      requests: { '2xx': code('2xx'), '4xx': code('4xx'), '5xx': code('5xx') },
      duration: this.duration.child({ model, variant }),
    };
  }

  /** One shadow comparison, HTTP or gRPC: its result and, when outputs decoded, their moves. */
  countShadow(labels: { model: string; variant: string }, { result, moves }: ComparisonDetail): void {
    this.shadowComparisons.inc({ ...labels, result });
    if (!moves) return;
    if (moves.up) this.shadowMoves.inc({ ...labels, direction: 'up' }, moves.up);
    if (moves.down) this.shadowMoves.inc({ ...labels, direction: 'down' }, moves.down);
    if (moves.same) this.shadowMoves.inc({ ...labels, direction: 'same' }, moves.same);
    if (moves.agree) this.shadowDecisions.inc({ ...labels, result: 'agree' }, moves.agree);
    if (moves.flipUp) this.shadowDecisions.inc({ ...labels, result: 'flip_up' }, moves.flipUp);
    if (moves.flipDown) this.shadowDecisions.inc({ ...labels, result: 'flip_down' }, moves.flipDown);
  }

  initShadow(model: string, variant: string): void {
    this.mirrored.inc({ model, variant }, 0);
    this.mirrorDropped.inc({ model, variant }, 0);
    for (const result of ['agree', 'disagree', 'error'] as const) {
      this.shadowComparisons.inc({ model, variant, result }, 0);
    }
    for (const direction of ['up', 'down', 'same'] as const)
      this.shadowMoves.inc({ model, variant, direction }, 0);
    for (const result of ['agree', 'flip_up', 'flip_down'] as const)
      this.shadowDecisions.inc({ model, variant, result }, 0);
    this.zeroOnce(this.shadowDuration, model, variant);
  }
}

export function codeClass(status: number): CodeClass {
  return status >= 500 ? '5xx' : status >= 400 ? '4xx' : '2xx';
}

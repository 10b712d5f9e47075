/**
 * The `scrape` MetricsSource: reads the runway router's /metrics directly (the embedded default,
 * no Prometheus needed) and folds the series of one model into a MetricsSnapshot per variant.
 */
import { request } from 'undici';
import { routerMetrics } from '../router/route';
import { startTimeMetric } from '../router/metrics';
import { parsePrometheusText, type Sample } from './prom-text';
import type { Histogram, MetricsSnapshot, MetricsSource, VariantCounters } from './source';
import { emptyCounters } from './window';

export interface ScrapeOptions {
  /** Router base URL, e.g. http://127.0.0.1:8080 (the /metrics path is appended). */
  url: string;
  timeoutMs?: number;
}

/** Folds parsed samples into the snapshot of `model`. Pure, so tests can feed it text. */
export function snapshotFromSamples(
  model: string,
  samples: Sample[],
  takenAt = new Date().toISOString(),
): MetricsSnapshot {
  const variants: Record<string, VariantCounters> = {};
  const latency = new Map<string, Map<number, number>>();
  const shadowLatency = new Map<string, Map<number, number>>();
  let epoch: string | undefined;
  const get = (v: string): VariantCounters => (variants[v] ??= emptyCounters());
  const bucketsOf = (m: Map<string, Map<number, number>>, v: string): Map<number, number> => {
    let b = m.get(v);
    if (!b) m.set(v, (b = new Map()));
    return b;
  };

  for (const s of samples) {
    if (s.name === startTimeMetric) {
      epoch = String(Math.round(s.value * 1000));
      continue;
    }
    if (s.labels.model !== model) continue;
    const v = s.labels.variant;
    if (v === undefined) continue;
    switch (s.name) {
      case routerMetrics.requests: {
        const c = get(v);
        c.requests += s.value;
        if (s.labels.code_class === '5xx') c.errors += s.value;
        else if (s.labels.code_class === '4xx') c.clientErrors += s.value;
        break;
      }
      case `${routerMetrics.duration}_bucket`:
        bucketsOf(latency, v).set(Number(s.labels.le === '+Inf' ? Infinity : s.labels.le), s.value);
        get(v);
        break;
      case `${routerMetrics.duration}_sum`:
        get(v).latency.sum = s.value;
        break;
      case `${routerMetrics.duration}_count`:
        get(v).latency.count = s.value;
        break;
      case routerMetrics.mirrored:
        get(v).mirrored += s.value;
        break;
      case routerMetrics.mirrorDropped:
        get(v).mirrorDropped += s.value;
        break;
      case routerMetrics.shadowComparisons: {
        const r = s.labels.result;
        if (r === 'agree' || r === 'disagree' || r === 'error') get(v).shadow[r] += s.value;
        break;
      }
      case routerMetrics.shadowMoves: {
        const d = s.labels.direction;
        const m = (get(v).shadow.moves ??= { up: 0, down: 0, same: 0 });
        if (d === 'up' || d === 'down' || d === 'same') m[d] += s.value;
        break;
      }
      case routerMetrics.shadowDecisions: {
        const r = s.labels.result;
        const m = (get(v).shadow.decisions ??= { agree: 0, flipUp: 0, flipDown: 0 });
        if (r === 'agree') m.agree += s.value;
        else if (r === 'flip_up') m.flipUp += s.value;
        else if (r === 'flip_down') m.flipDown += s.value;
        break;
      }
      case `${routerMetrics.shadowDuration}_bucket`:
        bucketsOf(shadowLatency, v).set(Number(s.labels.le === '+Inf' ? Infinity : s.labels.le), s.value);
        get(v);
        break;
      case `${routerMetrics.shadowDuration}_sum`:
        get(v).shadow.latency.sum = s.value;
        break;
      case `${routerMetrics.shadowDuration}_count`:
        get(v).shadow.latency.count = s.value;
        break;
      case routerMetrics.rewards:
        get(v).rewards.count += s.value;
        break;
      case routerMetrics.rewardSum:
        get(v).rewards.sum += s.value;
        break;
      case routerMetrics.feedbackRejected: {
        if (v === '') break; // refusals that named no assignment belong to no variant
        const c = get(v);
        c.feedbackRejected = (c.feedbackRejected ?? 0) + s.value;
        break;
      }
      // Upstream errors always answer 5xx, so they are already inside `errors`.
    }
  }
  const toHistogram = (b: Map<number, number> | undefined, h: Histogram): Histogram => {
    if (!b) return h;
    return { ...h, buckets: [...b].sort(([x], [y]) => x - y).map(([le, count]) => ({ le, count })) };
  };
  for (const [v, c] of Object.entries(variants)) {
    c.latency = toHistogram(latency.get(v), c.latency);
    c.shadow.latency = toHistogram(shadowLatency.get(v), c.shadow.latency);
  }
  return { model, takenAt, ...(epoch !== undefined ? { epoch } : {}), variants };
}

export class ScrapeMetricsSource implements MetricsSource {
  private readonly metricsUrl: string;

  constructor(private readonly options: ScrapeOptions) {
    this.metricsUrl = `${options.url.replace(/\/+$/, '')}/metrics`;
  }

  async snapshot(model: string): Promise<MetricsSnapshot> {
    const timeout = this.options.timeoutMs ?? 10_000;
    let text: string;
    try {
      const res = await request(this.metricsUrl, { headersTimeout: timeout, bodyTimeout: timeout });
      text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${text.slice(0, 200)}`);
    } catch (err) {
      throw new Error(
        `cannot read router metrics at ${this.metricsUrl} (${(err as Error).message}); is \`runway router\` running?`,
      );
    }
    return snapshotFromSamples(model, parsePrometheusText(text));
  }
}

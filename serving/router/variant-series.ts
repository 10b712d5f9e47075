/**
 * The two series every routed request writes, `requests_total{model,variant,code_class}` and
 * `request_duration_seconds{model,variant}`, counted in plain arrays per variant. prom-client
 * copies, validates and hashes the labels on every `inc` and `observe`, even through a bound
 * child: about 1 µs a request for these two (bench:router, perf). Here the labels are resolved
 * once per variant. Both series still sit in the router's Registry, which calls `get()` at each
 * scrape and formats them like its own metrics.
 */
import type { Metric } from 'prom-client';
import type { CodeClass, VariantInstruments } from './metrics';

const CODES: readonly CodeClass[] = ['2xx', '4xx', '5xx'];

interface Entry {
  model: string;
  variant: string;
  /** By CODES index. */
  codes: Float64Array;
  /** Per bucket (not cumulative), the last one +Inf. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

/** One sample as the Registry formats it (prom-client's own shape; its types do not export it). */
export interface SeriesValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

export interface SeriesSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: SeriesValue[];
}

export class VariantSeries {
  private readonly entries = new Map<string, Entry>();
  /** The requests counter, as the Registry reads it. */
  readonly requests: SeriesMetric;
  /** The latency histogram, as the Registry reads it. */
  readonly duration: SeriesMetric;

  constructor(
    names: { requests: string; duration: string },
    private readonly bounds: readonly number[],
  ) {
    this.requests = {
      name: names.requests,
      help: 'Requests answered, by variant and status class',
      type: 'counter',
      aggregator: 'sum',
      get: () => Promise.resolve(this.counterValues()),
      reset: () => this.entries.clear(),
    };
    this.duration = {
      name: names.duration,
      help: 'Time from request received to response sent (seconds)',
      type: 'histogram',
      aggregator: 'sum',
      get: () => Promise.resolve(this.histogramValues()),
      reset: () => this.entries.clear(),
    };
  }

  /** The variant's instruments; its series exist (at zero) from here on, and are never reset. */
  instruments(model: string, variant: string): VariantInstruments {
    const key = `${model}\u0000${variant}`;
    let e = this.entries.get(key);
    if (!e) {
      e = {
        model,
        variant,
        codes: new Float64Array(CODES.length),
        buckets: new Float64Array(this.bounds.length + 1),
        sum: 0,
        count: 0,
      };
      this.entries.set(key, e);
    }
    const entry = e;
    const bounds = this.bounds;
    const counter = (i: number) => ({
      inc(value = 1): void {
        entry.codes[i]! += value;
      },
    });
    return {
      requests: { '2xx': counter(0), '4xx': counter(1), '5xx': counter(2) },
      duration: {
        observe(value: number): void {
          if (!Number.isFinite(value)) return;
          let i = 0;
          while (i < bounds.length && value > bounds[i]!) i++;
          entry.buckets[i]!++;
          entry.sum += value;
          entry.count++;
        },
      },
    };
  }

  private counterValues(): SeriesSnapshot {
    const values: SeriesValue[] = [];
    for (const e of this.entries.values())
      CODES.forEach((code_class, i) =>
        values.push({ labels: { model: e.model, variant: e.variant, code_class }, value: e.codes[i]! }),
      );
    return { name: this.requests.name, help: this.requests.help, type: 'counter', aggregator: 'sum', values };
  }

  private histogramValues(): SeriesSnapshot {
    const name = this.duration.name;
    const values: SeriesValue[] = [];
    for (const e of this.entries.values()) {
      const labels = { model: e.model, variant: e.variant };
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += e.buckets[i]!;
        values.push({ labels: { ...labels, le }, value: cumulative, metricName: `${name}_bucket` });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: e.count, metricName: `${name}_bucket` });
      values.push({ labels, value: e.sum, metricName: `${name}_sum` });
      values.push({ labels, value: e.count, metricName: `${name}_count` });
    }
    return { name, help: this.duration.help, type: 'histogram', aggregator: 'sum', values };
  }
}

/** What prom-client's Registry calls on a metric (registerMetric, metrics(), getMetricsAsJSON). */
export interface SeriesMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<SeriesSnapshot>;
  reset(): void;
}

/** The Registry's parameter type is prom-client's Metric class; it reads only the members above. */
export const asRegistered = (m: SeriesMetric): Metric => m as unknown as Metric;

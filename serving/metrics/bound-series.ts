/**
 * Counters and histograms for the hot paths, their label sets bound once. prom-client copies,
 * validates and hashes the labels on every `inc` and `observe`, even through a child bound with
 * `labels()`: about half a microsecond a call, and a routed or refused request makes several.
 * Here a child is a few numbers in an array, found once. The series still live in a prom-client
 * Registry (`register`), which calls `get()` at each scrape and formats them like its own.
 */
import type { Metric, Registry } from 'prom-client';

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

/** What prom-client's Registry calls on a metric (registerMetric, metrics(), getMetricsAsJSON). */
export interface BoundSeries {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<SeriesSnapshot>;
  reset(): void;
}

type Labels = Record<string, string>;

const snapshot = (s: BoundSeries, values: SeriesValue[]): Promise<SeriesSnapshot> =>
  Promise.resolve({ name: s.name, help: s.help, type: s.type, aggregator: s.aggregator, values });
const keyOf = (labels: Labels): string => JSON.stringify(Object.entries(labels));

export class BoundCounter implements BoundSeries {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly children = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  /** The series of `labels` (at zero from here on, never reset), to `inc` on the hot path. */
  child(labels: Labels): { inc(value?: number): void } {
    const key = keyOf(labels);
    let c = this.children.get(key);
    if (!c) this.children.set(key, (c = { labels: { ...labels }, value: 0 }));
    const entry = c;
    return {
      inc(value = 1): void {
        entry.value += value;
      },
    };
  }

  get(): Promise<SeriesSnapshot> {
    const values = [...this.children.values()].map((c) => ({ labels: c.labels, value: c.value }));
    return snapshot(this, values);
  }

  reset(): void {
    for (const c of this.children.values()) c.value = 0;
  }
}

export class BoundHistogram implements BoundSeries {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly children = new Map<
    string,
    { labels: Labels; buckets: Float64Array; sum: number; count: number }
  >();

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending; +Inf is implied. */
    private readonly bounds: readonly number[],
  ) {}

  /** The series of `labels` (at zero from here on, never reset), to `observe` on the hot path. */
  child(labels: Labels): { observe(value: number): void } {
    const key = keyOf(labels);
    let c = this.children.get(key);
    if (!c)
      this.children.set(
        key,
        (c = { labels: { ...labels }, buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }),
      );
    const entry = c;
    const bounds = this.bounds;
    return {
      observe(value: number): void {
        if (!Number.isFinite(value)) return;
        // Upper-inclusive, as Prometheus' `le` (and prom-client) count.
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        entry.buckets[i]!++;
        entry.sum += value;
        entry.count++;
      },
    };
  }

  get(): Promise<SeriesSnapshot> {
    const values: SeriesValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.children.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += c.buckets[i]!;
        values.push({ labels: { le, ...c.labels }, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf', ...c.labels }, value: c.count, metricName: bucket });
      values.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` });
    }
    return snapshot(this, values);
  }

  reset(): void {
    for (const c of this.children.values()) {
      c.buckets.fill(0);
      c.sum = 0;
      c.count = 0;
    }
  }
}

/** Adds bound series to a Registry, which reads only the members of BoundSeries (its type asks for prom-client's Metric class). */
export function register(registry: Registry, ...series: BoundSeries[]): void {
  for (const s of series) registry.registerMetric(s as unknown as Metric);
}

/**
 * The `prometheus` MetricsSource: the same per-variant snapshot as the scrape source, read with
 * PromQL instant queries over Prometheus' HTTP API, summed over every router replica Prometheus
 * scrapes. The result is folded by the scrape source's own code, so both sources agree by
 * construction on what a snapshot means.
 *
 * Missing data is never a pass: a variant whose latency histogram is absent, or a model with no
 * series at all, yields a snapshot marked `missing` with an epoch that differs from every other,
 * so the windows on either side of it are gaps (inconclusive) rather than numbers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { createLogger, type Logger } from '../../common/log';
import { routerMetrics } from '../router/route';
import { startTimeMetric } from '../router/metrics';
import { snapshotFromSamples } from './scrape';
import { seriesMappings, type SeriesMappingName, type VectorSample } from './series';
import type { MetricsSnapshot, MetricsSource } from './source';

export interface PrometheusOptions {
  /** Prometheus base URL, e.g. http://127.0.0.1:9090 (a path prefix is kept). */
  url: string;
  /** Extra label matchers selecting the routers, e.g. `job="runway-router"`. */
  selector?: string;
  timeoutMs?: number;
  /** Bearer token for a Prometheus behind an authenticating proxy. */
  token?: string;
  /** Whose series to judge: the router's (default), the model servers' or Istio's (series.ts). */
  series?: SeriesMappingName;
  /** verify(): how long to wait for Prometheus to know the mapping's series (default 60 s). */
  startupWaitMs?: number;
  logger?: Logger;
}

/** A snapshot that lacks series: its windows are gaps. */
export type PrometheusSnapshot = MetricsSnapshot & { missing?: string[] };

export class PrometheusError extends Error {
  override name = 'PrometheusError';
}

/** The router mapping's query (kept for callers and tests that read it). */
export function snapshotQuery(model: string, selector?: string): string {
  return seriesMappings.router.query(model, selector);
}

export class PrometheusMetricsSource implements MetricsSource {
  private readonly base: string;
  private readonly log: Logger;

  constructor(private readonly options: PrometheusOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.log = options.logger ?? createLogger('metrics.prometheus');
  }

  async snapshot(model: string): Promise<PrometheusSnapshot> {
    const at = Date.now() / 1000;
    const takenAt = new Date(at * 1000).toISOString();
    const mapping = seriesMappings[this.options.series ?? 'router'];
    // Router replicas export their start time: a change marks a counter reset. The servers' and
    // Istio's series have no such marker here, so a restart there reads as a drop in the counters.
    const [series, starts] = await Promise.all([
      this.query(mapping.query(model, this.options.selector), at),
      mapping.name === 'router'
        ? this.query(`${startTimeMetric}${this.options.selector ? `{${this.options.selector}}` : ''}`, at)
        : Promise.resolve([]),
    ]);
    const samples = mapping.samples(model, series);
    const snap: PrometheusSnapshot = snapshotFromSamples(model, samples, takenAt);

    const missing: string[] = [];
    if (Object.keys(snap.variants).length === 0) {
      missing.push(`no ${mapping.expected.series} series for model "${model}" (${mapping.expected.hint})`);
    }
    const have = new Set(samples.map((s) => `${s.labels.variant}\u0000${s.name}`));
    for (const v of Object.keys(snap.variants)) {
      for (const n of [
        `${routerMetrics.duration}_bucket`,
        `${routerMetrics.duration}_count`,
        routerMetrics.requests,
      ]) {
        if (!have.has(`${v}\u0000${n}`)) missing.push(`variant ${v}: no ${n} series`);
      }
    }
    if (missing.length) {
      this.log.warn('series missing; this interval is inconclusive', { model, missing: missing.join('; ') });
      // An epoch no other snapshot has: both windows touching this one are gaps, never passes.
      return { ...snap, epoch: `missing@${takenAt}`, missing };
    }
    // Counters restart with a router replica; its start time changing marks the reset.
    const epoch = starts
      .map((s) => `${s.metric.instance ?? ''}=${s.value[1]}`)
      .sort()
      .join(',');
    return { ...snap, ...(epoch ? { epoch } : {}) };
  }

  /**
   * At worker start: Prometheus must know every metric name the mapping reads, either as stored
   * series or as metadata from a scrape (a router that has served nothing yet still exports its
   * HELP/TYPE lines). Waits up to startupWaitMs for a first scrape, then fails naming the mapping,
   * the names it lacks and the query each look would run, rather than pausing every promotion
   * later on an inconclusive window.
   */
  async verify(): Promise<void> {
    const mapping = seriesMappings[this.options.series ?? 'router'];
    const deadline = Date.now() + (this.options.startupWaitMs ?? 60_000);
    let nextLog = Date.now() + 10_000;
    for (;;) {
      const lacking = await this.unknownNames(mapping.names);
      if (lacking.length === 0) return;
      if (Date.now() >= deadline) {
        throw new PrometheusError(
          `metrics.series "${mapping.name}": Prometheus at ${this.base} knows no series named ` +
            `${lacking.join(', ')} (${mapping.expected.hint}); every look would be inconclusive. ` +
            `Each look runs: ${mapping.query('<model>', this.options.selector)}`,
        );
      }
      if (Date.now() >= nextLog) {
        this.log.info('waiting for Prometheus to scrape the series metrics.series reads', {
          series: mapping.name,
          lacking: lacking.join(', '),
        });
        nextLog = Date.now() + 10_000;
      }
      await sleep(1_000);
    }
  }

  /** The names Prometheus has neither as series nor as scraped metadata. */
  private async unknownNames(names: string[]): Promise<string[]> {
    const match = `{__name__=~"${names.join('|')}"}`;
    const stored = new Set(
      await this.getJson<string[]>(`/api/v1/label/__name__/values?match[]=${encodeURIComponent(match)}`),
    );
    const lacking: string[] = [];
    for (const name of names.filter((n) => !stored.has(n))) {
      // Metadata is kept per metric family as its TYPE line names it: a histogram's _bucket series
      // under the base name, a counter under its own name (with or without _total by exporter).
      const family = name.replace(/_(bucket|count|sum|total)$/, '');
      let known = false;
      for (const metric of new Set([name, family])) {
        const meta = await this.getJson<Record<string, unknown>>(
          `/api/v1/metadata?metric=${encodeURIComponent(metric)}`,
        );
        if (Object.keys(meta).length > 0) known = true;
      }
      if (!known) lacking.push(name);
    }
    return lacking;
  }

  private async getJson<T>(pathAndQuery: string): Promise<T> {
    return (await this.call(pathAndQuery)).data as T;
  }

  /** An instant query; errors name Prometheus' URL and its own explanation. */
  async query(promql: string, time?: number): Promise<VectorSample[]> {
    const body = new URLSearchParams({
      query: promql,
      ...(time !== undefined ? { time: time.toFixed(3) } : {}),
    });
    const data = (await this.call('/api/v1/query', body, promql)).data as
      { resultType?: string; result?: unknown } | undefined;
    if (data?.resultType !== 'vector' || !Array.isArray(data.result)) {
      throw new PrometheusError(
        `Prometheus answered a ${data?.resultType ?? 'missing'} result, expected a vector`,
      );
    }
    return data.result as VectorSample[];
  }

  /**
   * One API call (GET, or a form POST when `form` is given): unreachable, non-JSON and failed
   * answers are errors naming Prometheus' URL, its own explanation, and the query when there is one.
   */
  private async call(
    pathAndQuery: string,
    form?: URLSearchParams,
    promql?: string,
  ): Promise<{ status?: string; error?: string; errorType?: string; data?: unknown }> {
    const timeout = this.options.timeoutMs ?? 10_000;
    const auth = this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
    let status: number;
    let text: string;
    try {
      const res = await request(`${this.base}${pathAndQuery}`, {
        method: form ? 'POST' : 'GET',
        headers: form ? { 'content-type': 'application/x-www-form-urlencoded', ...auth } : auth,
        ...(form ? { body: form.toString() } : {}),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      throw new PrometheusError(
        `Prometheus unreachable at ${this.base} (${(err as Error).message}); check metrics.url in the platform config`,
      );
    }
    let doc: { status?: string; error?: string; errorType?: string; data?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch {
      throw new PrometheusError(
        `Prometheus at ${this.base} answered ${status} with non-JSON: ${text.slice(0, 200)}`,
      );
    }
    if (doc.status !== 'success') {
      throw new PrometheusError(
        `Prometheus ${promql ? 'query' : pathAndQuery} failed (${status} ${doc.errorType ?? ''}): ${doc.error ?? text.slice(0, 200)}${promql ? `; query: ${promql}` : ''}`,
      );
    }
    return doc;
  }
}

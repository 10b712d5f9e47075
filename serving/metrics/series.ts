/**
 * Which Prometheus series a promotion is judged on (`metrics.series` in the platform config):
 *   - `router`: the runway router's own (default): every request, mirror and reward it routed;
 *   - `server`: the model servers' own `runway_server_*` series, labelled by version, for traffic
 *     that reaches them without the runway router (gateway-api, istio, clients calling Services);
 *   - `istio`: Istio's standard `istio_requests_total` / `istio_request_duration_milliseconds`,
 *     as the destination sidecars report them.
 * Each mapping turns its series into the router's names and labels (variant `v<version>`,
 * `code_class`, seconds), so one folding (snapshotFromSamples) reads them all.
 */
import { routerMetrics } from '../router/route';
import type { Sample } from './prom-text';

export const SERIES_MAPPINGS = ['router', 'server', 'istio'] as const;
export type SeriesMappingName = (typeof SERIES_MAPPINGS)[number];

export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface SeriesMapping {
  name: SeriesMappingName;
  /** The one instant query behind a snapshot. */
  query(model: string, selector?: string): string;
  /** Its result as router-named samples. */
  samples(model: string, result: VectorSample[]): Sample[];
  /** The series a model must have for a snapshot to count, and where to look when it is missing. */
  expected: { series: string; hint: string };
  /**
   * Metric names Prometheus must know at worker start: a name it has never seen means the mapping
   * does not fit this Prometheus (wrong mapping, or nothing scrapes the producer), and every look
   * would be a gap. Checked once, so a misconfiguration fails loudly instead of pausing promotions.
   */
  names: string[];
}

/** Label values travel inside a PromQL string literal. */
export function quote(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

const alternatives = (names: string[]): string =>
  quote(names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'));

const ROUTER_SERIES = [
  routerMetrics.requests,
  `${routerMetrics.duration}_bucket`,
  `${routerMetrics.duration}_sum`,
  `${routerMetrics.duration}_count`,
  routerMetrics.mirrored,
  routerMetrics.mirrorDropped,
  routerMetrics.shadowComparisons,
  routerMetrics.shadowMoves,
  routerMetrics.shadowDecisions,
  `${routerMetrics.shadowDuration}_bucket`,
  `${routerMetrics.shadowDuration}_sum`,
  `${routerMetrics.shadowDuration}_count`,
  routerMetrics.rewards,
  routerMetrics.rewardSum,
  routerMetrics.feedbackRejected,
];

function plain(metric: Record<string, string>): { name?: string; labels: Record<string, string> } {
  const { __name__: name, ...labels } = metric;
  // `sum by` yields "" for labels a series lacks; the folding expects them absent.
  for (const k of Object.keys(labels)) if (labels[k] === '') delete labels[k];
  return { name, labels };
}

const router: SeriesMapping = {
  name: 'router',
  expected: { series: routerMetrics.requests, hint: 'is Prometheus scraping the router?' },
  names: [routerMetrics.requests, `${routerMetrics.duration}_bucket`],
  query(model, selector) {
    const m = [
      `__name__=~${alternatives(ROUTER_SERIES)}`,
      `model=${quote(model)}`,
      ...(selector ? [selector] : []),
    ];
    return `sum by (__name__, variant, code_class, le, result, direction) ({${m.join(', ')}})`;
  },
  samples(model, result) {
    return result.flatMap((s) => {
      const { name, labels } = plain(s.metric);
      return name ? [{ name, labels: { ...labels, model }, value: Number(s.value[1]) }] : [];
    });
  },
};

const SERVER_DURATION = 'runway_server_request_duration_seconds';
const server: SeriesMapping = {
  name: 'server',
  expected: { series: 'runway_server_requests_total', hint: 'is Prometheus scraping the model servers?' },
  names: ['runway_server_requests_total', `${SERVER_DURATION}_bucket`],
  query(model, selector) {
    const names = [
      'runway_server_requests_total',
      ...['bucket', 'sum', 'count'].map((x) => `${SERVER_DURATION}_${x}`),
    ];
    const m = [`__name__=~${alternatives(names)}`, `model=${quote(model)}`, ...(selector ? [selector] : [])];
    return `sum by (__name__, version, status, le) ({${m.join(', ')}})`;
  },
  samples(model, result) {
    return result.flatMap((s): Sample[] => {
      const { name, labels } = plain(s.metric);
      if (!name || !labels.version) return [];
      const value = Number(s.value[1]);
      const variant = `v${labels.version}`;
      if (name === 'runway_server_requests_total') {
        // The server answers `failure` for what it could not serve: the SLO's errors.
        const code_class = labels.status === 'success' ? '2xx' : '5xx';
        return [{ name: routerMetrics.requests, labels: { model, variant, code_class }, value }];
      }
      const suffix = name.slice(SERVER_DURATION.length);
      return [
        {
          name: `${routerMetrics.duration}${suffix}`,
          labels: { model, variant, ...(labels.le ? { le: labels.le } : {}) },
          value,
        },
      ];
    });
  },
};

const ISTIO_DURATION = 'istio_request_duration_milliseconds';
const istio: SeriesMapping = {
  name: 'istio',
  expected: {
    series: 'istio_requests_total{reporter="destination"}',
    hint: 'are the model pods in the mesh, labelled app.kubernetes.io/name and /version?',
  },
  names: ['istio_requests_total', `${ISTIO_DURATION}_bucket`],
  query(model, selector) {
    const names = [
      'istio_requests_total',
      ...['bucket', 'sum', 'count'].map((x) => `${ISTIO_DURATION}_${x}`),
    ];
    // Istio labels the destination by the pods' app.kubernetes.io/name (the model) and /version.
    const m = [
      `__name__=~${alternatives(names)}`,
      'reporter="destination"',
      `destination_app=${quote(model)}`,
      ...(selector ? [selector] : []),
    ];
    return `sum by (__name__, destination_version, response_code, le) ({${m.join(', ')}})`;
  },
  samples(model, result) {
    return result.flatMap((s): Sample[] => {
      const { name, labels } = plain(s.metric);
      const version = labels.destination_version;
      if (!name || !version || version === 'unknown') return [];
      const value = Number(s.value[1]);
      const variant = `v${version}`;
      if (name === 'istio_requests_total') {
        const code = labels.response_code ?? '0';
        // 0: the proxy got no response (reset, timeout): an error, as the router counts it.
        const code_class = /^[1-5]\d\d$/.test(code) ? `${code[0]}xx` : '5xx';
        return [{ name: routerMetrics.requests, labels: { model, variant, code_class }, value }];
      }
      const suffix = name.slice(ISTIO_DURATION.length);
      // Milliseconds to the router's seconds: bucket bounds and the sum; counts stay.
      const le =
        labels.le === undefined
          ? undefined
          : labels.le === '+Inf'
            ? '+Inf'
            : String(Number(labels.le) / 1000);
      return [
        {
          name: `${routerMetrics.duration}${suffix}`,
          labels: { model, variant, ...(le ? { le } : {}) },
          value: suffix === '_sum' ? value / 1000 : value,
        },
      ];
    });
  },
};

export const seriesMappings: Record<SeriesMappingName, SeriesMapping> = { router, server, istio };

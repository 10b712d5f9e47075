/**
 * Prometheus metrics of one model server, in their own Registry (never the global one, so
 * several servers can live in one process, as in tests and benchmarks). What every request
 * touches is bound once (bound-series.ts); the queue depth is read at scrape time.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { BoundCounter, BoundHistogram, register } from '../metrics/bound-series';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export interface ModelMetrics {
  registry: Registry;
  success(): void;
  failure(): void;
  requestSeconds(s: number): void;
  queueSeconds(s: number): void;
  computeSeconds(s: number): void;
  batchSize(rows: number): void;
  queueDepth(n: number): void;
  rejected(): void;
  timedOut(): void;
  loadSeconds(s: number): void;
  provider(name: string): void;
  /** An inference request log line written, or left out by the failure rate limit. */
  requestLogLine(outcome: 'logged' | 'suppressed'): void;
}

export function createModelMetrics(model: string, version: string): ModelMetrics {
  const registry = new Registry();
  const labelNames = ['model', 'version'] as const;
  const labels = { model, version };
  const requests = new BoundCounter(
    'runway_server_requests_total',
    'Inference requests answered, by outcome',
  );
  register(registry, requests);
  const histogram = (name: string, help: string, buckets: number[]): BoundHistogram => {
    const h = new BoundHistogram(name, help, buckets);
    register(registry, h);
    return h;
  };
  const request = histogram(
    'runway_server_request_duration_seconds',
    'Inference request duration, receipt to response',
    LATENCY_BUCKETS,
  );
  const queue = histogram(
    'runway_server_queue_duration_seconds',
    'Time a request waited in the batch queue',
    LATENCY_BUCKETS,
  );
  const compute = histogram(
    'runway_server_compute_duration_seconds',
    'Model execution time of a batch',
    LATENCY_BUCKETS,
  );
  const batch = histogram('runway_server_batch_size', 'Rows per model execution', BATCH_BUCKETS);
  const gauge = (name: string, help: string): Gauge<'model' | 'version'> =>
    new Gauge({ name, help, labelNames, registers: [registry] });
  // Set on every enqueue and dequeue: kept in a number, handed to the gauge when scraped.
  let depthNow = 0;
  const depth = new Gauge({
    name: 'runway_server_queue_depth',
    help: 'Requests waiting in the batch queue',
    labelNames,
    registers: [registry],
    collect() {
      this.labels(labels).set(depthNow);
    },
  });
  const load = gauge('runway_server_model_load_seconds', 'Seconds to load and warm up the model');
  const counter = (name: string, help: string): BoundCounter => {
    const c = new BoundCounter(name, help);
    register(registry, c);
    return c;
  };
  const rejected = counter('runway_server_rejected_total', 'Requests rejected because the queue was full');
  const timedOut = counter(
    'runway_server_timed_out_total',
    'Requests dropped after their timeout passed in the queue',
  );
  const provider = new Gauge({
    name: 'runway_server_execution_provider',
    help: 'Active onnxruntime execution provider (1 for the one in use)',
    labelNames: [...labelNames, 'provider'],
    registers: [registry],
  });

  const logLines = new Counter({
    name: 'runway_server_request_log_lines_total',
    help: 'Inference request log lines written (logged) or left out by the failure rate limit (suppressed)',
    labelNames: [...labelNames, 'outcome'],
    registers: [registry],
  });

  // Bound children: the hot path skips label lookups.
  const ok = requests.child({ ...labels, status: 'success' });
  const failed = requests.child({ ...labels, status: 'failure' });
  const requestL = request.child(labels);
  const queueL = queue.child(labels);
  const computeL = compute.child(labels);
  const batchL = batch.child(labels);
  const rejectedL = rejected.child(labels);
  const timedOutL = timedOut.child(labels);
  const logLinesL = {
    logged: logLines.labels({ ...labels, outcome: 'logged' }),
    suppressed: logLines.labels({ ...labels, outcome: 'suppressed' }),
  };
  // Zero-valued series exist from the start, so dashboards and rate() see them (the bound ones
  // from their child()).
  depth.labels(labels).set(0);
  logLinesL.logged.inc(0);
  logLinesL.suppressed.inc(0);

  return {
    registry,
    success: () => ok.inc(),
    failure: () => failed.inc(),
    requestSeconds: (s) => requestL.observe(s),
    queueSeconds: (s) => queueL.observe(s),
    computeSeconds: (s) => computeL.observe(s),
    batchSize: (n) => batchL.observe(n),
    queueDepth: (n) => void (depthNow = n),
    rejected: () => rejectedL.inc(),
    timedOut: () => timedOutL.inc(),
    loadSeconds: (s) => load.labels(labels).set(s),
    provider: (name) => {
      provider.reset();
      provider.labels({ ...labels, provider: name }).set(1);
    },
    requestLogLine: (outcome) => logLinesL[outcome].inc(),
  };
}

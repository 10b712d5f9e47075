/**
 * Prometheus metrics of one model server, in their own Registry (never the global one, so
 * several servers can live in one process, as in tests and benchmarks).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

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
  const requests = new Counter({
    name: 'runway_server_requests_total',
    help: 'Inference requests answered, by outcome',
    labelNames: [...labelNames, 'status'],
    registers: [registry],
  });
  const histogram = (name: string, help: string, buckets: number[]): Histogram<'model' | 'version'> =>
    new Histogram({ name, help, buckets, labelNames, registers: [registry] });
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
  const depth = gauge('runway_server_queue_depth', 'Requests waiting in the batch queue');
  const load = gauge('runway_server_model_load_seconds', 'Seconds to load and warm up the model');
  const counter = (name: string, help: string): Counter<'model' | 'version'> =>
    new Counter({ name, help, labelNames, registers: [registry] });
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
  const ok = requests.labels({ ...labels, status: 'success' });
  const failed = requests.labels({ ...labels, status: 'failure' });
  const requestL = request.labels(labels);
  const queueL = queue.labels(labels);
  const computeL = compute.labels(labels);
  const batchL = batch.labels(labels);
  const depthL = depth.labels(labels);
  const rejectedL = rejected.labels(labels);
  const timedOutL = timedOut.labels(labels);
  const logLinesL = {
    logged: logLines.labels({ ...labels, outcome: 'logged' }),
    suppressed: logLines.labels({ ...labels, outcome: 'suppressed' }),
  };
  // Zero-valued series exist from the start, so dashboards and rate() see them.
  rejectedL.inc(0);
  timedOutL.inc(0);
  ok.inc(0);
  failed.inc(0);
  depthL.set(0);
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
    queueDepth: (n) => depthL.set(n),
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

/**
 * `metrics.series: server` against Debian's real `prometheus` scraping two real `runway serve`
 * processes directly, with no runway router in the path (as with the gateway-api or istio
 * providers): the snapshot counts exactly the requests each version answered, per variant, with
 * their latency histograms; the mapping is built from the platform config by the factory; and a
 * mapping whose series Prometheus does not have (`istio`, no mesh here) makes the window a gap that
 * names the missing series, never a pass. At worker start, a mapping whose metric names Prometheus
 * has never seen fails with the names and the query; one whose producers have served nothing yet
 * passes on the metadata of their scrape.
 */
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import { createMetricsSource } from '../../serving/metrics/factory';
import { parse as parseYaml } from 'yaml';
import { HPA_METRICS } from '../../serving/fleet/k8s-manifests';
import { PrometheusMetricsSource, type PrometheusSnapshot } from '../../serving/metrics/prometheus';
import { parsePlatformConfig } from '../../workers/config';
import { workerDeps } from '../../workers/platform';
import {
  prometheusBinary,
  startPrometheus,
  warnWithoutPrometheus,
  type RunningPrometheus,
} from '../helpers/prometheus';
import { startServe, type ServeProcess } from '../helpers/server';

warnWithoutPrometheus('PROMETHEUS TESTS');

const MODEL = 'fraud';
/** The builtin provider only needs an admin URL to be built; these tests never route. */
const NO_ROUTER = { adminUrl: 'http://127.0.0.1:9', token: 'unused' };
const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

/** `n` requests to one server, each answered 200. */
async function infer(url: string, n: number): Promise<void> {
  for (let k = 0; k < n; k++) {
    const r = await request(`${url}/v2/models/${MODEL}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [
          {
            name: 'features',
            datatype: 'FP32',
            shape: [1, 8],
            data: Array.from({ length: 8 }, (_, j) => ((k + j) % 5) / 5),
          },
        ],
      }),
    });
    await r.body.text();
    expect(r.statusCode).toBe(200);
  }
}

describe.skipIf(!prometheusBinary)(
  'metrics.series server: Prometheus scraping the model servers themselves',
  () => {
    let prom: RunningPrometheus | undefined;
    let promUrl: string;
    const servers: ServeProcess[] = [];

    beforeAll(async () => {
      for (const v of ['1', '2']) {
        servers.push(
          await startServe([
          '--model', path.join(projectRoot, `demo/models/fraud-v${v}.onnx`),
          '--name', MODEL, '--version', v, '--threads', '1',
        ]), // prettier-ignore
        );
      }
      prom = await startPrometheus({ 'runway-models': servers.map((srv) => new URL(srv.url).host) });
      promUrl = prom.url;
    }, 120_000);

    afterAll(async () => {
      await prom?.stop();
      await Promise.allSettled(servers.map((s) => s.stop()));
    });

    it('worker start accepts a mapping whose servers are scraped but have served nothing yet', async () => {
      // No request has reached the servers: their counters exist only as HELP/TYPE lines, which
      // Prometheus keeps as metadata. A fresh install must not fail its first worker start.
      const config = parsePlatformConfig({
        metrics: { source: 'prometheus', url: promUrl, series: 'server', startupWaitSeconds: 30 },
        router: NO_ROUTER,
      });
      await expect(workerDeps(config, quiet)).resolves.toBeDefined();
    }, 60_000);

    it('worker start refuses a mapping whose series Prometheus has never seen, naming the query', async () => {
      const config = parsePlatformConfig({
        metrics: { source: 'prometheus', url: promUrl, series: 'istio', startupWaitSeconds: 0 },
        router: NO_ROUTER,
      });
      const err = await workerDeps(config, quiet).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(
        /metrics\.series "istio": Prometheus at http:\/\/127\.0\.0\.1:\d+ knows no series named istio_requests_total, istio_request_duration_milliseconds_bucket/,
      );
      expect(err?.message).toContain(
        'Each look runs: sum by (__name__, destination_version, response_code, le)',
      );
    });

    it('counts what each version answered, per variant, with no runway router in the path', async () => {
      const sent = { v1: 30, v2: 12 };
      for (const [i, n] of [sent.v1, sent.v2].entries()) await infer(servers[i]!.url, n);
      const config = parsePlatformConfig({
        metrics: { source: 'prometheus', url: promUrl, series: 'server' },
      });
      const source = createMetricsSource(config.metrics, undefined, quiet);
      let snap: PrometheusSnapshot | undefined;
      const deadline = Date.now() + 30_000;
      for (;;) {
        snap = (await source.snapshot(MODEL)) as PrometheusSnapshot;
        if (snap.variants.v1?.requests === sent.v1 && snap.variants.v2?.requests === sent.v2) break;
        if (Date.now() > deadline) throw new Error(`Prometheus never caught up: ${JSON.stringify(snap)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(snap.missing).toBeUndefined();
      for (const [variant, n] of Object.entries(sent)) {
        const c = snap.variants[variant]!;
        expect(c.errors).toBe(0);
        // Every answered request is in the latency histogram, in its cumulative +Inf bucket.
        expect(c.latency.count, variant).toBe(n);
        expect(c.latency.buckets.at(-1)).toEqual({ le: Infinity, count: n });
        expect(c.latency.sum).toBeGreaterThan(0);
      }
    });

    it("prometheus-adapter's rules for the autoscalers' metrics are valid PromQL with a value per version", async () => {
      interface Rule {
        seriesQuery: string;
        name: { as: string };
        metricsQuery: string;
      }
      const values = parseYaml(
        fs.readFileSync(path.join(projectRoot, 'deploy/prometheus-adapter/values.yaml'), 'utf8'),
      ) as { rules: { custom: Rule[] } };
      const rules = values.rules.custom;
      // The names the HPAs ask for are the names the adapter serves.
      expect(rules.map((r) => r.name.as).sort()).toEqual(Object.values(HPA_METRICS).sort());
      const prom = new PrometheusMetricsSource({ url: promUrl, logger: quiet });
      for (const rule of rules) {
        // The adapter's templates, filled as it fills them for one object; `version` stands in for
        // `pod` (this Prometheus scrapes the servers directly, without Kubernetes labels).
        const series = rule.seriesQuery.replace(/\{.*$/, '');
        const promql = rule.metricsQuery
          .replaceAll('<<.Series>>', series)
          .replaceAll('<<.LabelMatchers>>', `model="${MODEL}"`)
          .replaceAll('<<.GroupBy>>', 'version');
        // A rate needs the series to move between two scrapes: serve a little more, then wait.
        await Promise.all(servers.map((srv) => infer(srv.url, 10)));
        const deadline = Date.now() + 30_000;
        for (;;) {
          const result = await prom.query(promql);
          const finite = result.filter((r) => Number.isFinite(Number(r.value[1])));
          if (finite.length === 2) {
            expect(finite.map((r) => r.metric.version).sort(), promql).toEqual(['1', '2']);
            break;
          }
          if (Date.now() > deadline)
            throw new Error(`no value per version for ${promql}: ${JSON.stringify(result)}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    });

    it('a mapping whose series are absent makes a gap that names them', async () => {
      const config = parsePlatformConfig({
        metrics: { source: 'prometheus', url: promUrl, series: 'istio' },
      });
      const snap = (await createMetricsSource(config.metrics, undefined, quiet).snapshot(
        MODEL,
      )) as PrometheusSnapshot;
      expect(snap.missing?.[0]).toMatch(
        /no istio_requests_total\{reporter="destination"\} series for model "fraud"/,
      );
      expect(snap.epoch).toMatch(/^missing@/);
    });
  },
);

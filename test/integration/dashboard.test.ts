/**
 * deploy/grafana/runway.json against what real Prometheus scrapes from a real `runway router`,
 * two real `runway serve` processes behind it with traffic, and a worker's /metrics after real
 * notify calls: every panel's PromQL parses (Prometheus' query API answers `success`, where a
 * broken expression answers `bad_data`) and returns data.
 *
 * The burn-rate panel divides the router's error ratio per window by the `$error_budget` variable;
 * the PSI panel reads the drift histograms a server keeps when it is given a drift reference (as
 * the fleet gives one at a production deploy for the watch after graduation).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkerMetrics } from '../../activities/metrics';
import { notifyActivities } from '../../activities/notify';
import type { ActivityDeps } from '../../activities/deps';
import { createLogger } from '../../common/log';
import { projectRoot } from '../../common/paths';
import { createNotifier } from '../../notifications/notifier';
import { parsePlatformConfig } from '../../workers/config';
import { serveWorkerMetrics, type MetricsEndpoint } from '../../workers/metrics-endpoint';
import {
  startPrometheus,
  prometheusBinary,
  warnWithoutPrometheus,
  type RunningPrometheus,
} from '../helpers/prometheus';
import { closeAll, putRoute, spawnRouterProcess, type RouterProcess } from '../helpers/router';
import { startServe, type ServeProcess } from '../helpers/server';
import { closeReceivers, startReceiver } from '../helpers/webhook-receiver';

warnWithoutPrometheus('DASHBOARD TESTS');

const MODEL = 'fraud';
/** Drift bins for the fraud model's 8 features, as the fleet derives them from evaluation data. */
const DRIFT_REFERENCE = JSON.stringify({
  input: 'features',
  output: 'score',
  sampleRate: 1,
  features: Array.from({ length: 8 }, (_, i) => ({
    name: `f${i}`,
    column: i,
    edges: [0.25, 0.5, 0.75],
    counts: [25, 25, 25, 25],
  })),
});

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }>;
}
const dashboard = JSON.parse(
  fs.readFileSync(path.join(projectRoot, 'deploy/grafana/runway.json'), 'utf8'),
) as {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string }> };
};
const panels = dashboard.panels.filter((p) => p.type !== 'row');

/** What Grafana puts in for its variables; `$model` is the one this test's traffic used. */
function expand(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '20s')
    .replaceAll('$__range', '10m')
    .replaceAll('$model', MODEL)
    .replaceAll('$error_budget', '0.001');
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('the dashboard file', () => {
  it('has panels for what the issue asks, each with a query on the datasource variable', () => {
    expect(dashboard.uid).toBe('runway-overview');
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'model', 'error_budget']);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    for (const p of panels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
    }
    for (const series of [
      'runway_router_requests_total',
      'runway_router_request_duration_seconds_bucket',
      'runway_server_request_duration_seconds_bucket',
      'runway_server_batch_size_bucket',
      'runway_server_queue_depth',
      '$error_budget',
      'runway_drift_psi',
      'runway_promotions_total',
    ]) {
      expect(
        exprs.some((e) => e.includes(series)),
        series,
      ).toBe(true);
    }
    // Per-model panels follow the model picker.
    for (const e of exprs.filter((x) => x.includes('{') && !x.includes('runway_notifications_total'))) {
      expect(e).toContain('model=~"$model"');
    }
  });
});

describe.skipIf(!prometheusBinary)('every panel against real Prometheus', () => {
  let router: RouterProcess;
  const servers: ServeProcess[] = [];
  let worker: MetricsEndpoint;
  let prom: RunningPrometheus | undefined;

  beforeAll(async () => {
    router = await spawnRouterProcess();
    for (const v of ['1', '2']) {
      servers.push(
        await startServe([
          '--model', path.join(projectRoot, `demo/models/fraud-v${v}.onnx`),
          '--name', MODEL, '--version', v, '--threads', '1',
          ...(v === '2' ? ['--drift-reference', DRIFT_REFERENCE] : []),
        ]), // prettier-ignore
      );
    }
    const route = {
      variants: [
        // A replica that is gone: the router fails over from it, which the failover panel shows.
        { name: 'v1', endpoints: [servers[0]!.url, `http://127.0.0.1:${await closedPort()}`], weight: 70 },
        { name: 'v2', endpoints: [servers[1]!.url], weight: 30 },
      ],
    };
    expect((await putRoute(router.url, MODEL, route)).status).toBe(200);

    // A worker's metrics after the notify activity saw two promotions end, one webhook answering.
    const hook = await startReceiver('ok');
    const config = parsePlatformConfig({ notifications: { webhooks: [{ name: 'chat', url: hook.url }] } });
    const quiet = createLogger('test', () => {});
    const workerMetrics = createWorkerMetrics();
    const { notify } = notifyActivities({
      logger: quiet,
      notifier: createNotifier(config.notifications, quiet),
      workerMetrics,
    } as unknown as ActivityDeps); // the notify activity reads only these
    worker = await serveWorkerMetrics('127.0.0.1:0', workerMetrics.registry);

    const host = (u: string): string => new URL(u).host;
    prom = await startPrometheus({
      'runway-router': [host(router.url)],
      'runway-models': servers.map((s) => host(s.url)),
      'runway-worker': [host(worker.url)],
    });
    // Counters first seen at 0, then raised, so increase() over the range has something to show.
    await new Promise((r) => setTimeout(r, 2500));
    await notify({
      model: MODEL,
      version: '2',
      event: 'promotion_promoted',
      message: 'all steps passed',
      details: { stage: 'graduate' },
    });
    await notify({
      model: MODEL,
      version: '3',
      event: 'promotion_rolled_back',
      message: 'slo',
      details: { stage: 'canary' },
    });
    for (let k = 0; k < 300; k++) {
      const r = await request(`${router.url}/v2/models/${MODEL}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          inputs: [
            {
              name: 'features',
              datatype: 'FP32',
              shape: [1, 8],
              data: Array.from({ length: 8 }, (_, j) => ((k + j) % 7) / 7),
            },
          ],
        }),
      });
      await r.body.text();
      expect(r.statusCode).toBe(200);
      if (k % 30 === 0) await new Promise((res) => setTimeout(res, 200));
    }
  }, 180_000);

  afterAll(async () => {
    await prom?.stop();
    await worker?.close();
    await Promise.allSettled(servers.map((s) => s.stop()));
    await closeAll();
    await closeReceivers();
  });

  it('a broken expression is refused, so a parse failure would be seen', async () => {
    const answer = await prom!.query('sum by (model (rate(runway_router_requests_total[1m]))');
    expect(answer.status).toBe('error');
    expect(answer.errorType).toBe('bad_data');
  });

  it('every panel query parses and returns data', async () => {
    const checked: string[] = [];
    const deadline = Date.now() + 60_000;
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        const expr = expand(t.expr);
        for (;;) {
          const answer = await prom!.query(expr);
          expect(answer.status, `${p.title} ${t.refId}: ${answer.error ?? ''}\n${expr}`).toBe('success');
          if ((answer.data?.result.length ?? 0) > 0) {
            checked.push(`${p.title} ${t.refId}`);
            break;
          }
          // Rates need two scrapes in their window; give Prometheus time before calling it empty.
          if (Date.now() > deadline) throw new Error(`${p.title} ${t.refId} returned no data:\n${expr}`);
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    }
    console.info(`dashboard: ${checked.length} queries parsed and returned data`);
    expect(checked).toHaveLength(panels.flatMap((p) => p.targets ?? []).length);
  }, 120_000);
});

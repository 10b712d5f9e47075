/**
 * The prometheus MetricsSource against Debian's real `prometheus`, scraping a real `runway router`
 * process on loopback every second, with real `runway serve` model servers behind it. What the
 * PromQL snapshot says must equal what the router's own /metrics says (the scrape source), counter
 * by counter and bucket by bucket; unreachable Prometheus and missing series fail loudly or turn
 * the window into a gap.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compiled, projectRoot } from '../../common/paths';
import { PrometheusError, PrometheusMetricsSource } from '../../serving/metrics/prometheus';
import { ScrapeMetricsSource } from '../../serving/metrics/scrape';
import type { MetricsSnapshot } from '../../serving/metrics/source';
import { windowBetween } from '../../serving/metrics/window';
import { closeAll, putRoute, spawnRouterProcess, type RouterProcess } from '../helpers/router';
import { startServe, type ServeProcess } from '../helpers/server';
import { freePort } from '../../common/ports';

function prometheusBinary(): string | undefined {
  try {
    return execFileSync('bash', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const binary = prometheusBinary();
if (!binary) {
  const reason =
    'PROMETHEUS TESTS SKIPPED: no `prometheus` on PATH; install it with `bash scripts/tools.sh prometheus`';
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: these tests must run)`);
  console.warn(`\n${'!'.repeat(100)}\n${reason}\n${'!'.repeat(100)}\n`);
}

const MODEL = 'fraud';
const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

describe.skipIf(!binary)('prometheus MetricsSource on a real Prometheus scraping a real router', () => {
  let dir: string;
  let prom: ChildProcess | undefined;
  let promLog = '';
  let promUrl: string;
  let router: RouterProcess;
  const servers: ServeProcess[] = [];

  beforeAll(async () => {
    for (const f of ['cli/main.ts', 'serving/router/configmap.ts']) {
      if (!fs.existsSync(compiled(f)))
        throw new Error(`${compiled(f)} missing: run \`npx tsc -p tsconfig.build.json\` first`);
    }
    const models = path.join(projectRoot, 'demo/models');
    if (!fs.existsSync(path.join(models, 'fraud-v2.onnx'))) {
      throw new Error('demo/models/fraud-v2.onnx missing: run `npm run demo:models` first');
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-prom-'));
    const [v1, v2] = await Promise.all(
      ['1', '2'].map((v) =>
        startServe([
          '--model',
          path.join(models, `fraud-v${v}.onnx`),
          '--name',
          MODEL,
          '--version',
          v,
          '--threads',
          '1',
        ]),
      ),
    );
    servers.push(v1!, v2!);
    router = await spawnRouterProcess([]);
    const put = await putRoute(router.url, MODEL, {
      variants: [
        { name: 'v1', endpoints: [v1!.url], weight: 70 },
        { name: 'v2', endpoints: [v2!.url], weight: 30 },
        { name: 'v2-shadow', endpoints: [v2!.url], weight: 0 },
      ],
      mirror: { variant: 'v2-shadow', percent: 50 },
    });
    expect(put.status).toBe(200);

    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const target = new URL(router.url).host;
    fs.writeFileSync(
      path.join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: runway-router',
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    );
    prom = spawn(
      binary!,
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prom.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const r = await request(`${promUrl}/-/ready`);
        await r.body.text();
        if (r.statusCode === 200) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`prometheus not ready in 30 s:\n${promLog}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom!.once('exit', r));
      prom.kill('SIGTERM');
      const t = setTimeout(() => prom!.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    await closeAll();
    await Promise.allSettled(servers.map((s) => s.stop()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads the same per-variant counters and histograms as the router’s own /metrics', async () => {
    const infer = (features: number[], unit: string): Promise<number> =>
      request(`${router.url}/v2/models/${MODEL}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-runway-unit': unit },
        body: JSON.stringify({
          inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: features }],
        }),
      }).then(async (r) => (await r.body.text(), r.statusCode));
    const codes: number[] = [];
    for (let i = 0; i < 80; i++)
      codes.push(
        await infer(
          Array.from({ length: 8 }, (_, j) => ((i + j) % 7) / 7),
          `u${i}`,
        ),
      );
    // Client errors (wrong shape) are counted as 4xx, not as server errors.
    for (let i = 0; i < 5; i++) codes.push(await infer([1, 2, 3], `bad${i}`));
    expect(codes.filter((c) => c === 200)).toHaveLength(80);
    expect(codes.filter((c) => c === 400)).toHaveLength(5);
    for (let i = 0; i < 10; i++) {
      const r = await request(`${router.url}/v1/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, unit: `u${i}`, reward: 1 }),
      });
      await r.body.text();
      expect(r.statusCode).toBe(200);
    }

    const scrape = new ScrapeMetricsSource({ url: router.url });
    const prometheus = new PrometheusMetricsSource({
      url: promUrl,
      selector: 'job="runway-router"',
      logger: quiet,
    });
    // Shadow copies finish after their primaries; wait until the router's numbers are still.
    let truth: MetricsSnapshot = await scrape.snapshot(MODEL);
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const again = await scrape.snapshot(MODEL);
      if (JSON.stringify(again.variants) === JSON.stringify(truth.variants)) break;
      truth = again;
    }
    // Prometheus sees the router one scrape later: wait until it has caught up with the truth.
    const total = (s: MetricsSnapshot): number =>
      Object.values(s.variants).reduce((n, v) => n + v.requests, 0);
    let seen: MetricsSnapshot | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      seen = await prometheus.snapshot(MODEL);
      const shadow = (s: MetricsSnapshot): number => s.variants['v2-shadow']?.shadow.latency.count ?? -1;
      if (total(seen) === total(truth) && shadow(seen) === shadow(truth) && !('missing' in seen)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(seen, `prometheus log:\n${promLog}`).toBeDefined();
    expect(total(truth)).toBe(85);
    expect(Object.keys(seen!.variants).sort()).toEqual(Object.keys(truth.variants).sort());
    for (const [name, t] of Object.entries(truth.variants)) {
      const s = seen!.variants[name]!;
      expect({
        name,
        ...s,
        latency: { ...s.latency, sum: 0 },
        shadow: { ...s.shadow, latency: { ...s.shadow.latency, sum: 0 } },
      }).toEqual({
        name,
        ...t,
        latency: { ...t.latency, sum: 0 },
        shadow: { ...t.shadow, latency: { ...t.shadow.latency, sum: 0 } },
      });
      expect(s.latency.sum).toBeCloseTo(t.latency.sum, 9);
      expect(s.shadow.latency.sum).toBeCloseTo(t.shadow.latency.sum, 9);
    }
    // The numbers are real traffic: both weighted variants served, the shadow got copies, rewards arrived.
    expect(seen!.variants.v1!.requests).toBeGreaterThan(0);
    expect(seen!.variants.v2!.requests).toBeGreaterThan(0);
    expect(seen!.variants.v1!.clientErrors + seen!.variants.v2!.clientErrors).toBe(5);
    expect(seen!.variants['v2-shadow']!.shadow.latency.count).toBeGreaterThan(0);
    expect(seen!.variants.v1!.rewards.count + seen!.variants.v2!.rewards.count).toBe(10);
    expect(seen!.variants.v1!.latency.buckets.at(-1)).toEqual({
      le: Infinity,
      count: seen!.variants.v1!.latency.count,
    });

    // Same router lifetime, same epoch: a window between two reads is real numbers, not a gap.
    const later = await prometheus.snapshot(MODEL);
    expect(later.epoch).toBe(seen!.epoch);
    expect(windowBetween(seen!, later).gap).toBe(false);
  });

  it('turns missing series into a gap (inconclusive), never numbers', async () => {
    const prometheus = new PrometheusMetricsSource({
      url: promUrl,
      selector: 'job="runway-router"',
      logger: quiet,
    });
    const before = await prometheus.snapshot(MODEL);
    const none = await prometheus.snapshot('no-such-model');
    expect(none.missing?.[0]).toMatch(/no runway_router_requests_total series for model "no-such-model"/);
    expect(none.epoch).toMatch(/^missing@/);
    // A selector matching no router: every series of the model is missing.
    const wrongJob = new PrometheusMetricsSource({
      url: promUrl,
      selector: 'job="not-the-router"',
      logger: quiet,
    });
    const blind = await wrongJob.snapshot(MODEL);
    expect(blind.missing).toBeDefined();
    const w = windowBetween(before, blind);
    expect(w.gap).toBe(true);
    expect(w.variants).toEqual({});
  });

  it('fails clearly when Prometheus is unreachable or refuses the query', async () => {
    const closed = await freePort();
    const gone = new PrometheusMetricsSource({ url: `http://127.0.0.1:${closed}`, timeoutMs: 2_000 });
    await expect(gone.snapshot(MODEL)).rejects.toThrow(
      new RegExp(`Prometheus unreachable at http://127.0.0.1:${closed}.*metrics\\.url`),
    );
    await expect(gone.snapshot(MODEL)).rejects.toBeInstanceOf(PrometheusError);
    const p = new PrometheusMetricsSource({ url: promUrl });
    await expect(p.query('sum(')).rejects.toThrow(/Prometheus query failed \(400 bad_data\)/);
  });
});

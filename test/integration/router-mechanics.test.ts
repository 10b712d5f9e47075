/**
 * Routing mechanics through a real router on loopback, with small OIP stub servers as upstreams
 * (their answers and delays are under the test's control): split, stickiness, mirroring,
 * feedback, validation, faults and metrics. The real-model path is router-models.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Pool, request } from 'undici';
import { parsePrometheusText } from '../../serving/metrics/prom-text';
import { ScrapeMetricsSource, snapshotFromSamples } from '../../serving/metrics/scrape';
import { windowBetween } from '../../serving/metrics/window';
import { BuiltinTrafficRouter } from '../../serving/traffic/builtin';
import {
  closeAll,
  getRoute,
  inferBody,
  putRoute,
  startStubModelServer,
  startTestRouter,
} from '../helpers/router';

afterAll(closeAll);

interface Reply {
  status: number;
  variant: string | undefined;
  body: string;
  ms: number;
}

async function infer(
  pool: Pool,
  model: string,
  opts: { unit?: string; id?: string; body?: string } = {},
): Promise<Reply> {
  const t0 = performance.now();
  const res = await pool.request({
    path: `/v2/models/${model}/infer`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.unit ? { 'x-runway-unit': opts.unit } : {}) },
    body: opts.body ?? inferBody(opts.id),
  });
  const body = await res.body.text();
  const v = res.headers['x-runway-variant'];
  return {
    status: res.statusCode,
    variant: typeof v === 'string' ? v : undefined,
    body,
    ms: performance.now() - t0,
  };
}

async function many<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('router mechanics (stub upstreams)', () => {
  it('splits ≥ 5,000 requests within ±2 pp of the weights, on every endpoint', async () => {
    const [a1, a2, b] = await Promise.all([
      startStubModelServer(),
      startStubModelServer(),
      startStubModelServer(),
    ]);
    const router = await startTestRouter();
    const put = await putRoute(router.url, 'fraud', {
      variants: [
        { name: 'v1', endpoints: [a1.url, a2.url], weight: 70 },
        { name: 'v2', endpoints: [b.url], weight: 30 },
      ],
    });
    expect(put.status).toBe(200);
    const pool = new Pool(router.url, { connections: 16 });
    const n = 6000;
    const replies = await many(n, 16, () => infer(pool, 'fraud'));
    await pool.close();
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const v1 = replies.filter((r) => r.variant === 'v1').length;
    expect(Math.abs((v1 / n) * 100 - 70)).toBeLessThanOrEqual(2);
    // Upstreams saw exactly what the header claims, and both v1 replicas took a share.
    expect(a1.received + a2.received).toBe(v1);
    expect(b.received).toBe(n - v1);
    expect(Math.min(a1.received, a2.received)).toBeGreaterThan(v1 / 4);

    // And the metrics say the same, through the scrape MetricsSource.
    const snap = await new ScrapeMetricsSource({ url: router.url }).snapshot('fraud');
    expect(snap.variants.v1!.requests).toBe(v1);
    expect(snap.variants.v2!.requests).toBe(n - v1);
    expect(snap.variants.v1!.latency.count).toBe(v1);
    expect(snap.variants.v1!.errors).toBe(0);
    expect(snap.epoch).toBe(router.metrics.epoch);
  });

  it('keeps sticky units on their variant while weights stand; moves only those the boundary passes', async () => {
    const [a, b] = await Promise.all([startStubModelServer(), startStubModelServer()]);
    const router = await startTestRouter();
    const route = (w1: number) => ({
      variants: [
        { name: 'v1', endpoints: [a.url], weight: w1 },
        { name: 'v2', endpoints: [b.url], weight: 100 - w1 },
      ],
    });
    expect((await putRoute(router.url, 'fraud', route(70))).status).toBe(200);
    const pool = new Pool(router.url, { connections: 8 });
    const units = Array.from({ length: 400 }, (_, i) => `user-${i}`);
    const first = new Map<string, string>();
    for (let round = 0; round < 4; round++) {
      const replies = await many(units.length, 8, (i) => infer(pool, 'fraud', { unit: units[i] }));
      replies.forEach((r, i) => {
        const u = units[i]!;
        if (round === 0) first.set(u, r.variant!);
        else expect(r.variant, u).toBe(first.get(u));
      });
    }
    const onV1 = [...first.values()].filter((v) => v === 'v1').length;
    expect(onV1 / units.length).toBeGreaterThan(0.6);
    expect(onV1 / units.length).toBeLessThan(0.8);

    // Shift 20 points to v2: v2's units stay; some v1 units move to v2, none the other way.
    expect((await putRoute(router.url, 'fraud', route(50))).status).toBe(200);
    const after = await many(units.length, 8, (i) => infer(pool, 'fraud', { unit: units[i] }));
    await pool.close();
    let moved = 0;
    after.forEach((r, i) => {
      const before = first.get(units[i]!)!;
      if (before === 'v2') expect(r.variant).toBe('v2');
      if (before !== r.variant) moved++;
    });
    expect(moved / units.length).toBeGreaterThan(0.1);
    expect(moved / units.length).toBeLessThan(0.3);
  });

  it('mirrors to the shadow without delaying or altering client answers, even when it is slow or failing', async () => {
    const primary = await startStubModelServer({ score: 0.25 });
    const shadow = await startStubModelServer({ score: 0.25, delayMs: 1_000 });
    // Ejection off: this test wants every copy to reach the failing shadow.
    const router = await startTestRouter({ mirrorConcurrency: 1000, ejection: { consecutiveFailures: 1e6 } });
    const route = {
      variants: [
        { name: 'v1', endpoints: [primary.url], weight: 100 },
        { name: 'v2', endpoints: [shadow.url], weight: 0 },
      ],
      mirror: { variant: 'v2', percent: 100 },
    };
    expect((await putRoute(router.url, 'fraud', route)).status).toBe(200);
    const pool = new Pool(router.url, { connections: 4 });
    const direct = await infer(new Pool(primary.url), 'fraud', { id: 'x' });
    const slow = await many(40, 4, (i) => infer(pool, 'fraud', { id: `slow-${i}` }));
    for (const r of slow) {
      expect(r.status).toBe(200);
      expect(r.variant).toBe('v1');
      expect(r.ms).toBeLessThan(500); // the shadow takes 1 s; the client never waits for it
    }
    expect(JSON.parse(slow[0]!.body)).toEqual({ ...JSON.parse(direct.body), id: 'slow-0' });
    await waitFor(() => shadow.received === 40);
    expect(shadow.lastHeaders?.['x-runway-shadow']).toBe('1');
    await waitFor(
      async () =>
        (await new ScrapeMetricsSource({ url: router.url }).snapshot('fraud')).variants.v2!.shadow.agree ===
        40,
    );

    // A failing shadow: clients still get the primary's answers; the router counts errors.
    shadow.behaviour = { status: 500 };
    const failing = await many(30, 4, (i) => infer(pool, 'fraud', { id: `fail-${i}` }));
    expect(failing.every((r) => r.status === 200 && r.variant === 'v1')).toBe(true);
    const shadowOf = async () =>
      (await new ScrapeMetricsSource({ url: router.url }).snapshot('fraud')).variants.v2!;
    // Copies leave after the answers: let them all land before the shadow changes behaviour.
    await waitFor(async () => (await shadowOf()).shadow.error === 30);
    // A disagreeing shadow.
    shadow.behaviour = { score: 0.9 };
    await many(10, 2, (i) => infer(pool, 'fraud', { id: `dis-${i}` }));
    await waitFor(async () => (await shadowOf()).shadow.disagree === 10);
    const s = await shadowOf();
    expect(s.shadow).toMatchObject({ agree: 40, disagree: 10, error: 30 });
    expect(s.mirrored).toBe(80);
    expect(s.shadow.latency.count).toBe(80);
    expect(s.requests).toBe(0); // the shadow served no client
    await pool.close();
  });

  it('bounds mirror concurrency: excess copies are dropped and counted', async () => {
    const primary = await startStubModelServer();
    const shadow = await startStubModelServer({ delayMs: 500 });
    const router = await startTestRouter({ mirrorConcurrency: 2 });
    await putRoute(router.url, 'm', {
      variants: [
        { name: 'a', endpoints: [primary.url], weight: 100 },
        { name: 'shadow', endpoints: [shadow.url], weight: 0 },
      ],
      mirror: { variant: 'shadow', percent: 100 },
    });
    const pool = new Pool(router.url, { connections: 4 });
    const replies = await many(20, 4, () => infer(pool, 'm'));
    await pool.close();
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const snap = await new ScrapeMetricsSource({ url: router.url }).snapshot('m');
    expect(snap.variants.shadow!.mirrorDropped).toBeGreaterThan(0);
    expect(snap.variants.shadow!.mirrored + snap.variants.shadow!.mirrorDropped).toBe(20);
  });

  it('attributes feedback to the variant that served the request id or unit', async () => {
    const [a, b] = await Promise.all([startStubModelServer(), startStubModelServer()]);
    const router = await startTestRouter();
    await putRoute(router.url, 'fraud', {
      variants: [
        { name: 'v1', endpoints: [a.url], weight: 50 },
        { name: 'v2', endpoints: [b.url], weight: 50 },
      ],
    });
    const pool = new Pool(router.url, { connections: 4 });
    const replies = await many(200, 4, (i) => infer(pool, 'fraud', { id: `req-${i}` }));
    const served = { v1: 0, v2: 0 };
    for (let i = 0; i < replies.length; i++) {
      const reward = i % 2; // odd requests convert
      const res = await request(`${router.url}/v1/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fraud', requestId: `req-${i}`, reward }),
      });
      const body = (await res.body.json()) as { variant: string };
      expect(res.statusCode).toBe(200);
      expect(body.variant).toBe(replies[i]!.variant);
      served[replies[i]!.variant as 'v1' | 'v2'] += reward;
    }
    // By header id and by unit too, each on its own request: one request earns one reward, so the
    // unit of a request already rewarded by its id is refused (409), and the first reward stays.
    const headerVariants: string[] = [];
    for (const headers of [{ 'x-request-id': 'hdr-1' }, { 'x-runway-unit': 'alice' }]) {
      const res = await pool.request({
        path: '/v2/models/fraud/infer',
        method: 'POST',
        headers,
        body: inferBody(),
      });
      await res.body.dump();
      headerVariants.push(res.headers['x-runway-variant'] as string);
    }
    for (const [i, fb] of [{ requestId: 'hdr-1' }, { unit: 'alice' }].entries()) {
      const res = await request(`${router.url}/v1/feedback`, {
        method: 'POST',
        body: JSON.stringify({ model: 'fraud', reward: 1, ...fb }),
      });
      expect(res.statusCode).toBe(200);
      expect(((await res.body.json()) as { variant: string }).variant).toBe(headerVariants[i]);
    }
    const both = await pool.request({
      path: '/v2/models/fraud/infer',
      method: 'POST',
      headers: { 'x-request-id': 'hdr-2', 'x-runway-unit': 'bob' },
      body: inferBody(),
    });
    await both.body.dump();
    const first = await request(`${router.url}/v1/feedback`, {
      method: 'POST',
      body: JSON.stringify({ model: 'fraud', reward: 1, requestId: 'hdr-2' }),
    });
    expect(first.statusCode).toBe(200);
    await first.body.dump();
    const second = await request(`${router.url}/v1/feedback`, {
      method: 'POST',
      body: JSON.stringify({ model: 'fraud', reward: 0, unit: 'bob' }),
    });
    expect(second.statusCode).toBe(409);
    expect(await second.body.json()).toMatchObject({ reward: 1, reason: 'duplicate' });
    const bothVariant = both.headers['x-runway-variant'] as string;
    await pool.close();
    const snap = await new ScrapeMetricsSource({ url: router.url }).snapshot('fraud');
    const extra = { v1: 0, v2: 0 };
    for (const v of [...headerVariants, bothVariant]) extra[v as 'v1' | 'v2']++;
    expect(snap.variants.v1!.rewards.sum).toBe(served.v1 + extra.v1);
    expect(snap.variants.v2!.rewards.sum).toBe(served.v2 + extra.v2);
    expect(snap.variants.v1!.rewards.count + snap.variants.v2!.rewards.count).toBe(203);

    const unknown = await request(`${router.url}/v1/feedback`, {
      method: 'POST',
      body: JSON.stringify({ model: 'fraud', requestId: 'never-seen', reward: 1 }),
    });
    expect(unknown.statusCode).toBe(404);
    expect(((await unknown.body.json()) as { error: string }).error).toMatch(/never-seen/);
    for (const bad of [
      '{not json',
      '{"model":"fraud","reward":1}',
      '{"model":"fraud","requestId":"req-1","reward":"yes"}',
    ]) {
      const res = await request(`${router.url}/v1/feedback`, { method: 'POST', body: bad });
      expect(res.statusCode, bad).toBe(400);
      expect(((await res.body.json()) as { error: string }).error).toMatch(/feedback|JSON/);
    }
  });

  it('refuses invalid routes with the field and expectation, keeping the old route in force', async () => {
    const a = await startStubModelServer();
    const router = await startTestRouter();
    const good = { variants: [{ name: 'v1', endpoints: [a.url], weight: 100 }] };
    expect((await putRoute(router.url, 'fraud', good)).status).toBe(200);
    const cases: [unknown, RegExp][] = [
      [
        { variants: [{ name: 'v1', endpoints: [a.url], weight: 90 }] },
        /variants: expected weights summing to 100, got 90/,
      ],
      [
        {
          variants: [
            { name: 'v1', endpoints: [a.url], weight: 50.5 },
            { name: 'v2', endpoints: [a.url], weight: 49.5 },
          ],
        },
        /variants\[0\]\.weight: expected an integer/,
      ],
      [
        { variants: [{ name: 'v1', endpoints: ['ftp://x'], weight: 100 }] },
        /variants\[0\]\.endpoints\[0\]: expected an http\(s\) URL/,
      ],
      [
        {
          variants: [
            { name: 'v1', endpoints: [a.url], weight: 50 },
            { name: 'v1', endpoints: [a.url], weight: 50 },
          ],
        },
        /variants\[1\]\.name: expected unique names/,
      ],
      [
        {
          variants: [{ name: 'v1', endpoints: [a.url], weight: 100 }],
          mirror: { variant: 'v9', percent: 10 },
        },
        /mirror\.variant: expected one of/,
      ],
      [
        {
          variants: [{ name: 'v1', endpoints: [a.url], weight: 100 }],
          mirror: { variant: 'v1', percent: 10 },
        },
        /mirror\.variant: expected a weight-0 shadow variant/,
      ],
      [
        {
          variants: [
            { name: 'v1', endpoints: [a.url], weight: 100 },
            { name: 'v2', endpoints: [a.url], weight: 0 },
          ],
          mirror: { variant: 'v2', percent: 150 },
        },
        /mirror\.percent: expected 0–100/,
      ],
      [
        {
          variants: [
            { name: 'v1', endpoints: [a.url], weight: -1 },
            { name: 'v2', endpoints: [a.url], weight: 101 },
          ],
        },
        /variants\[0\]\.weight: expected an integer ≥ 0/,
      ],
      ['{"variants": [', /not valid JSON/],
    ];
    for (const [route, message] of cases) {
      const res = await putRoute(router.url, 'fraud', route);
      expect(res.status, JSON.stringify(route)).toBe(400);
      expect((res.body as { error: string }).error).toMatch(message);
    }
    expect(await getRoute(router.url, 'fraud')).toEqual(good);
    expect((await infer(new Pool(router.url), 'fraud')).variant).toBe('v1');

    // An explicitly weighted mirror is accepted.
    const weightedMirror = {
      variants: [{ name: 'v1', endpoints: [a.url], weight: 100 }],
      mirror: { variant: 'v1', percent: 5, allowWeightedMirror: true },
    };
    expect((await putRoute(router.url, 'fraud', weightedMirror)).status).toBe(200);

    // The builtin TrafficRouter passes the router's explanation through.
    const builtin = new BuiltinTrafficRouter({ url: router.url });
    await expect(
      builtin.setRoute('fraud', { variants: [{ name: 'v1', endpoints: [a.url], weight: 99 }] }),
    ).rejects.toThrow(/\(400\).*got 99/);
    expect(await builtin.getRoute('fraud')).toEqual(weightedMirror);
    await builtin.setRoute('fraud', good);
    expect(await builtin.getRoute('fraud')).toEqual(good);
    expect(Object.keys(await builtin.listRoutes())).toEqual(['fraud']);
    await builtin.deleteRoute('fraud');
    await builtin.deleteRoute('fraud'); // idempotent
    expect(await builtin.getRoute('fraud')).toBeUndefined();
    await expect(new BuiltinTrafficRouter({ url: 'http://127.0.0.1:1' }).getRoute('x')).rejects.toThrow(
      /unreachable at http:\/\/127\.0\.0\.1:1.*runway up/,
    );
  });

  it('answers 404 for unknown models, 503 for a variant without healthy endpoints, 504 on upstream timeout', async () => {
    const slow = await startStubModelServer({ delayMs: 1_500 });
    const ok = await startStubModelServer();
    const router = await startTestRouter({
      upstreamTimeoutMs: 300,
      ejection: { consecutiveFailures: 3, cooldownMs: 400 },
    });
    const pool = new Pool(router.url);
    const unknown = await infer(pool, 'nope');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).error).toMatch(/"nope"/);

    await putRoute(router.url, 'slow', { variants: [{ name: 'v1', endpoints: [slow.url], weight: 100 }] });
    const timedOut = await infer(pool, 'slow');
    expect(timedOut.status).toBe(504);
    expect(timedOut.variant).toBe('v1');

    // A dead endpoint: connect errors (502) eject it after 3, then 503 names the variant;
    // after the cool-down it is tried again.
    await putRoute(router.url, 'dead', {
      variants: [{ name: 'v7', endpoints: ['http://127.0.0.1:1'], weight: 100 }],
    });
    const first = await many(3, 1, () => infer(pool, 'dead'));
    expect(first.map((r) => r.status)).toEqual([502, 502, 502]);
    const ejected = await infer(pool, 'dead');
    expect(ejected.status).toBe(503);
    expect(JSON.parse(ejected.body).error).toMatch(/variant "v7" of model "dead" has no healthy endpoint/);
    await new Promise((r) => setTimeout(r, 450));
    expect((await infer(pool, 'dead')).status).toBe(502);

    // One bad replica among good ones: each attempt on it is retried on the good one (inference
    // never reached the dead one), and it is ejected after 3.
    await putRoute(router.url, 'mixed', {
      variants: [{ name: 'v1', endpoints: ['http://127.0.0.1:1', ok.url], weight: 100 }],
    });
    const mixed = await many(50, 1, () => infer(pool, 'mixed'));
    expect(mixed.filter((r) => r.status !== 200 || r.variant !== 'v1')).toEqual([]);
    await pool.close();

    const snap = snapshotFromSamples('dead', parsePrometheusText(await router.metrics.registry.metrics()));
    expect(snap.variants.v7!.errors).toBe(5);
  });

  it('answers from the baseline when the candidate replica is gone, and charges the candidate the failure', async () => {
    const base = await startStubModelServer();
    const router = await startTestRouter({ ejection: { consecutiveFailures: 3, cooldownMs: 60_000 } });
    await putRoute(router.url, 'fo', {
      variants: [
        { name: 'v1', endpoints: [base.url], weight: 50 },
        { name: 'v2', endpoints: ['http://127.0.0.1:1'], weight: 50 },
      ],
    });
    const pool = new Pool(router.url);
    const replies = await many(200, 4, () => infer(pool, 'fo'));
    // No client sees the dead candidate: every answer is the baseline's.
    expect(replies.filter((r) => r.status !== 200 || r.variant !== 'v1')).toEqual([]);
    // Metadata (GET) fails over too; a non-idempotent path would not (none is proxied today).
    const meta = await pool.request({ path: '/v2/models/fo', method: 'GET' });
    await meta.body.text();
    expect(meta.statusCode).toBe(200);
    await pool.close();

    const samples = parsePrometheusText(await router.metrics.registry.metrics());
    const snap = snapshotFromSamples('fo', samples);
    // The SLO guard reads the candidate's attempts: all failed (connect, then no endpoint once ejected).
    expect(snap.variants.v2!.requests).toBeGreaterThan(50);
    expect(snap.variants.v2!.errors).toBe(snap.variants.v2!.requests);
    expect(snap.variants.v1!.errors).toBe(0);
    const failovers = samples
      .filter((x) => x.name === 'runway_router_failovers_total' && x.labels.model === 'fo')
      .reduce((n, x) => n + x.value, 0);
    expect(failovers).toBe(snap.variants.v2!.requests);
  });

  it('a route change (the same route again, new weights) keeps the counters of every variant', async () => {
    const up = await startStubModelServer();
    const router = await startTestRouter();
    const route = (w: number) => ({
      variants: [
        { name: 'v1', endpoints: [up.url], weight: 100 - w },
        { name: 'v2', endpoints: [up.url], weight: w },
      ],
    });
    await putRoute(router.url, 'rc', route(50));
    const source = new ScrapeMetricsSource({ url: router.url });
    const pool = new Pool(router.url);
    await many(100, 4, () => infer(pool, 'rc'));
    const before = await source.snapshot('rc');
    // an activity retried after a worker crash puts the same route again; a bandit moves weights
    await putRoute(router.url, 'rc', route(50));
    await putRoute(router.url, 'rc', route(20));
    await many(50, 4, () => infer(pool, 'rc'));
    await pool.close();
    const after = await source.snapshot('rc');
    const w = windowBetween(before, after);
    expect(w.gap, w.gapReason).toBe(false);
    const total = (v: string) => after.variants[v]!.latency.count;
    expect(total('v1') + total('v2')).toBe(150);
    expect(w.variants.v1!.latency.count + w.variants.v2!.latency.count).toBe(50);
    expect(w.variants.v1!.requests + w.variants.v2!.requests).toBe(50);
  });

  it('passes binary tensor bodies through byte-exact with their headers', async () => {
    const echo = await startStubModelServer();
    const router = await startTestRouter();
    await putRoute(router.url, 'bin', { variants: [{ name: 'v1', endpoints: [echo.url], weight: 100 }] });
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 8], parameters: { binary_data_size: 64 } }],
      }),
    );
    const tensor = Buffer.alloc(64);
    for (let i = 0; i < 16; i++) tensor.writeFloatLE(i / 7, i * 4);
    const body = Buffer.concat([header, tensor]);
    const res = await request(`${router.url}/v2/models/bin/infer`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.length),
      },
      body,
    });
    const back = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    expect(res.headers['inference-header-content-length']).toBe(String(header.length));
    expect(back.equals(body)).toBe(true);
    expect(echo.lastHeaders?.['inference-header-content-length']).toBe(String(header.length));
  });

  it('answers alike whichever lane reads the request: plain on the fast lane, chunked via node:http', async () => {
    const echo = await startStubModelServer();
    const router = await startTestRouter();
    await putRoute(router.url, 'lanes', { variants: [{ name: 'v1', endpoints: [echo.url], weight: 100 }] });
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } }],
      }),
    );
    const body = Buffer.concat([header, Buffer.from(new Float32Array([1, 2, 3, 4]).buffer)]);
    const headers = {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.length),
    };
    const { Readable } = await import('node:stream');
    const sends = {
      plain: () => body,
      // No length: undici sends it chunked, which the fast lane hands to node:http.
      chunked: () => Readable.from([body.subarray(0, 7), body.subarray(7)]),
    };
    for (const [lane, make] of Object.entries(sends)) {
      const res = await request(`${router.url}/v2/models/lanes/infer`, {
        method: 'POST',
        headers: { ...headers, 'x-request-id': lane },
        body: make(),
      });
      const back = Buffer.from(await res.body.arrayBuffer());
      expect(res.statusCode, lane).toBe(200);
      expect(res.headers['x-runway-variant'], lane).toBe('v1');
      expect(back.equals(body), lane).toBe(true);
      // Forwarded with its length either way: the replica never sees the client's framing.
      expect(echo.lastHeaders?.['content-length'], lane).toBe(String(body.length));
    }
    expect(echo.ids).toEqual(['plain', 'chunked']);
  });

  it('survives bad input and guards the admin API with the token', async () => {
    const a = await startStubModelServer();
    const router = await startTestRouter({ adminToken: 's3cret', maxBodyBytes: 1024 });
    const noToken = await putRoute(router.url, 'm', {
      variants: [{ name: 'v1', endpoints: [a.url], weight: 100 }],
    });
    expect(noToken.status).toBe(401);
    const wrong = await putRoute(
      router.url,
      'm',
      { variants: [{ name: 'v1', endpoints: [a.url], weight: 100 }] },
      'nope',
    );
    expect(wrong.status).toBe(401);
    const ok = await putRoute(
      router.url,
      'm',
      { variants: [{ name: 'v1', endpoints: [a.url], weight: 100 }] },
      's3cret',
    );
    expect(ok.status).toBe(200);

    const big = await request(`${router.url}/v2/models/m/infer`, {
      method: 'POST',
      body: Buffer.alloc(4096),
    });
    expect(big.statusCode).toBe(413);
    await big.body.dump();
    for (const path of ['/v2/models/%E0%A4%A/infer', '/nowhere', '/v2/models/', '/admin/routes/bad%20name']) {
      const res = await request(`${router.url}${path}`, { method: 'POST', body: 'x' });
      expect(res.statusCode, path).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, path).toBeLessThan(500);
      await res.body.dump();
    }
    // Upstream garbage: a "server" that answers with non-HTTP bytes.
    const net = await import('node:net');
    const garbage = net.createServer((s) => s.end('this is not http\r\n\r\n'));
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
    const gport = (garbage.address() as import('node:net').AddressInfo).port;
    await putRoute(
      router.url,
      'g',
      { variants: [{ name: 'v1', endpoints: [`http://127.0.0.1:${gport}`], weight: 100 }] },
      's3cret',
    );
    const g = await request(`${router.url}/v2/models/g/infer`, { method: 'POST', body: '{}' });
    expect(g.statusCode).toBe(502);
    await g.body.dump();
    garbage.close();

    const live = await request(`${router.url}/v2/health/ready`);
    expect(live.statusCode).toBe(200);
    await live.body.dump();
    expect((await infer(new Pool(router.url), 'm')).status).toBe(200);
  });
});

/**
 * Feedback a hostile client cannot bend, on a real router on loopback with stub upstreams:
 * rewards outside the route's shape are refused with the bound named; a request or unit window
 * earns one reward and a repeat answers 409 with the first kept; a route with a feedback token
 * takes rewards only from its holder, the token configured in the platform file and carried to
 * the router as a digest by the real setTraffic activity; 10 000 random bodies leave every sum
 * finite and within its count. Each refusal is counted by reason.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Pool, request } from 'undici';
import { trafficActivities } from '../../activities/traffic';
import { createLogger } from '../../common/log';
import { parsePrometheusText } from '../../serving/metrics/prom-text';
import { ScrapeMetricsSource } from '../../serving/metrics/scrape';
import type { FleetDriver } from '../../serving/fleet/driver';
import { loadPlatformConfig, redacted } from '../../workers/config';
import { platformDeps } from '../../workers/platform';
import {
  closeAll,
  getRoute,
  inferBody,
  putRoute,
  startStubModelServer,
  startTestRouter,
} from '../helpers/router';

afterAll(closeAll);

interface Answer {
  status: number;
  body: { error?: string; reason?: string; variant?: string; reward?: number };
}

async function feedback(base: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(`${base}/v1/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Answer['body'] };
}

async function infer(base: string, model: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(`${base}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: inferBody(),
  });
  await res.body.dump();
  expect(res.statusCode).toBe(200);
  return res.headers['x-runway-variant'] as string;
}

async function metricsText(base: string): Promise<string> {
  const res = await request(`${base}/metrics`);
  return res.body.text();
}

/** `runway_router_feedback_rejected_total` by reason for one model (all variants). */
async function rejectedByReason(base: string, model: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of parsePrometheusText(await metricsText(base))) {
    if (s.name !== 'runway_router_feedback_rejected_total' || s.labels.model !== model) continue;
    const r = s.labels.reason!;
    out[r] = (out[r] ?? 0) + s.value;
  }
  return out;
}

describe('feedback on the real router', () => {
  it('refuses each reward outside the route shape with the bound, and counts the refusals', async () => {
    const stub = await startStubModelServer();
    const router = await startTestRouter();
    const routes = {
      bin: { reward: 'binary' },
      cont: { reward: { bounded: { min: -5, max: 50 } } },
      legacy: {},
    } as const;
    for (const [model, extra] of Object.entries(routes)) {
      const put = await putRoute(router.url, model, {
        variants: [{ name: 'v1', endpoints: [stub.url], weight: 100 }],
        ...extra,
      });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      await infer(router.url, model, { 'x-request-id': 'r1' });
    }
    const cases: [string, string, RegExp, string][] = [
      ['bin', '0.5', /reward 0\.5 is not 0 or 1 \(the route's reward shape is binary\)/, 'out_of_shape'],
      ['bin', '2', /reward 2 is not 0 or 1/, 'out_of_shape'],
      ['bin', '-1', /reward -1 is not 0 or 1/, 'out_of_shape'],
      ['bin', '1e400', /reward: expected a finite number/, 'non_finite'],
      ['bin', '-1e400', /reward: expected a finite number/, 'non_finite'],
      ['bin', '"1"', /reward: expected a number/, 'malformed'],
      ['cont', '50.5', /outside the route's bounds: expected -5 ≤ reward ≤ 50/, 'out_of_shape'],
      ['cont', '-6', /expected -5 ≤ reward ≤ 50/, 'out_of_shape'],
      ['cont', '1e308', /expected -5 ≤ reward ≤ 50/, 'out_of_shape'],
      ['legacy', '5', /reward 5 is outside 0 … 1 \(the route declares no reward shape/, 'out_of_shape'],
      ['legacy', '1e308', /outside 0 … 1/, 'out_of_shape'],
    ];
    for (const [model, reward, message, reason] of cases) {
      const a = await feedback(router.url, `{"model":"${model}","requestId":"r1","reward":${reward}}`);
      expect(a.status, `${model} ${reward}`).toBe(400);
      expect(a.body.error, `${model} ${reward}`).toMatch(message);
      expect(a.body.reason).toBe(reason);
    }
    for (const body of [
      '{not json',
      '[]',
      '{"model":"bin","reward":1}',
      '{"model":"bin","requestId":"r1","unit":"u","reward":1}',
      '{"model":"bin","requestId":"r1","reward":1,"extra":true}',
    ]) {
      const a = await feedback(router.url, body);
      expect(a.status, body).toBe(400);
      expect(a.body.error, body).toMatch(/invalid feedback: /);
    }
    // Nothing refused reached a counter; the bounds still take what fits (scaled to [0, 1]).
    const source = new ScrapeMetricsSource({ url: router.url });
    for (const model of Object.keys(routes)) {
      expect((await source.snapshot(model)).variants.v1!.rewards).toEqual({ count: 0, sum: 0 });
    }
    expect((await feedback(router.url, { model: 'cont', requestId: 'r1', reward: 50 })).status).toBe(200);
    expect((await source.snapshot('cont')).variants.v1!.rewards).toEqual({ count: 1, sum: 1 });
    expect(await rejectedByReason(router.url, 'bin')).toMatchObject({
      out_of_shape: 3,
      non_finite: 2,
      malformed: 4, // "1", and the three bodies that named the routed model
    });
    expect(await rejectedByReason(router.url, 'cont')).toMatchObject({ out_of_shape: 3 });
    // The variant is named when the refused reward named a known assignment.
    const perVariant = (await source.snapshot('bin')).variants.v1!.feedbackRejected;
    expect(perVariant).toBe(5);
  });

  it("refuses the issue's stuffing: one reward per request or unit window, repeats 409 with the first kept", async () => {
    const stub = await startStubModelServer();
    const router = await startTestRouter();
    await putRoute(router.url, 'ho', {
      variants: [
        { name: 'v1', endpoints: [stub.url], weight: 50 },
        { name: 'v2', endpoints: [stub.url], weight: 50 },
      ],
    });
    // As filed: one inference with a unit, then 1e308 twice, then 5 (the route predates shapes).
    const variant = await infer(router.url, 'ho', { 'x-runway-unit': 'u1' });
    for (const reward of [1e308, 1e308, 5]) {
      const a = await feedback(router.url, { model: 'ho', unit: 'u1', reward });
      expect(a.status).toBe(400);
      expect(a.body.error).toMatch(/outside 0 … 1/);
    }
    const first = await feedback(router.url, { model: 'ho', unit: 'u1', reward: 1 });
    expect(first).toEqual({ status: 200, body: { model: 'ho', variant, reward: 1 } });
    for (const reward of [1, 0, 0.5]) {
      const again = await feedback(router.url, { model: 'ho', unit: 'u1', reward });
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ reason: 'duplicate', variant, reward: 1 });
      expect(again.body.error).toMatch(
        /unit "u1" of model "ho" already has a reward \(1\); the first is kept/,
      );
    }
    // More requests by u1 in the same window do not reopen it.
    await infer(router.url, 'ho', { 'x-runway-unit': 'u1' });
    expect((await feedback(router.url, { model: 'ho', unit: 'u1', reward: 1 })).status).toBe(409);

    // By request id: one reward each; a request with an id and a new unit earns one, not two.
    const pool = new Pool(router.url, { connections: 4 });
    const ids = Array.from({ length: 40 }, (_, i) => `req-${i}`);
    for (const id of ids) await infer(router.url, 'ho', { 'x-request-id': id });
    await infer(router.url, 'ho', { 'x-request-id': 'both', 'x-runway-unit': 'u2' });
    const attempts = await Promise.all(
      [...ids, ...ids, ...ids].map(
        async (id) => (await feedback(router.url, { model: 'ho', requestId: id, reward: 1 })).status,
      ),
    );
    expect(attempts.filter((s) => s === 200)).toHaveLength(40);
    expect(attempts.filter((s) => s === 409)).toHaveLength(80);
    expect((await feedback(router.url, { model: 'ho', requestId: 'both', reward: 1 })).status).toBe(200);
    expect((await feedback(router.url, { model: 'ho', unit: 'u2', reward: 1 })).status).toBe(409);
    await pool.close();

    const snap = await new ScrapeMetricsSource({ url: router.url }).snapshot('ho');
    const v1 = snap.variants.v1!;
    const v2 = snap.variants.v2!;
    expect(v1.rewards.count + v2.rewards.count).toBe(42); // u1, 40 ids, "both"
    expect(v1.rewards.sum + v2.rewards.sum).toBe(42);
    expect(Number.isFinite(v1.rewards.sum) && Number.isFinite(v2.rewards.sum)).toBe(true);
    expect(v1.rewards.count).toBeLessThanOrEqual(v1.requests);
    expect(v2.rewards.count).toBeLessThanOrEqual(v2.requests);
    expect(await rejectedByReason(router.url, 'ho')).toMatchObject({
      duplicate: 3 + 1 + 80 + 1,
      out_of_shape: 3,
    });
    expect((v1.feedbackRejected ?? 0) + (v2.feedbackRejected ?? 0)).toBe(85 + 3);
    const text = await metricsText(router.url);
    expect(text).not.toMatch(/runway_router_reward_sum_total\{[^}]*\} (\+Inf|NaN)/);
  });

  it('takes feedback only with the model token from the platform config (401 missing, 403 wrong)', async () => {
    const lines: string[] = [];
    const logger = createLogger('feedback-test', (line) => lines.push(line));
    const stub = await startStubModelServer();
    const router = await startTestRouter({ logger: logger.child('router') });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-feedback-'));
    const token = randomBytes(32).toString('hex');
    fs.writeFileSync(path.join(home, 'fd-token'), `${token}\n`, { mode: 0o600 });
    fs.writeFileSync(path.join(home, 'short'), 'abc\n');
    const configFile = path.join(home, 'platform.yaml');
    fs.writeFileSync(
      configFile,
      `router:\n  adminUrl: ${router.url}\n  feedbackTokenFiles:\n    fd: ${path.join(home, 'fd-token')}\n`,
    );
    fs.writeFileSync(
      path.join(home, 'bad.yaml'),
      `router:\n  feedbackTokenFiles:\n    fd: ${path.join(home, 'short')}\n`,
    );
    expect(() => loadPlatformConfig({ file: path.join(home, 'bad.yaml'), env: {} })).toThrow(
      /router\.feedbackTokenFiles\.fd: the token in .* has 3 characters, expected at least 32/,
    );
    const config = loadPlatformConfig({ file: configFile, env: {} });
    expect(config.router.feedbackTokens).toEqual({ fd: token });
    expect(JSON.stringify(redacted(config))).not.toContain(token);
    // The stub model server stands in for the fleet: one ready replica, nothing else deployed.
    const fleet = {
      get: async (name: string) => ({ name, endpoints: [stub.url], replicas: 1, fullReplicas: 1 }),
      list: async () => [],
    } as unknown as FleetDriver;
    const deps = { ...platformDeps(config, { url: router.url, token: '' }, logger), fleet };
    const set = await trafficActivities(deps).setTraffic({
      model: 'fd',
      variants: [{ name: 'v1', deployment: 'fd-v1-production', weight: 100 }],
      sticky: { header: 'x-runway-unit' },
      reward: 'binary',
      reason: 'test',
    });
    // What the activity returns lands in the workflow history: no token, no digest.
    expect(JSON.stringify(set)).not.toContain(token);
    expect(set).toMatchObject({ feedbackTokenRequired: true, reward: 'binary' });
    expect(set).not.toHaveProperty('feedback');

    await infer(router.url, 'fd', { 'x-request-id': 'a' });
    const body = { model: 'fd', requestId: 'a', reward: 1 };
    const missing = await feedback(router.url, body);
    expect(missing.status).toBe(401);
    expect(missing.body.error).toMatch(
      /needs "Authorization: Bearer <token>" with the model's feedback token/,
    );
    for (const wrong of [`Bearer ${token.slice(1)}`, `Bearer ${token}x`, `Basic ${token}`, 'Bearer ']) {
      const a = await feedback(router.url, body, { authorization: wrong });
      expect(a.status, wrong.slice(0, 8)).toBe(wrong.startsWith('Bearer ') && wrong.length > 7 ? 403 : 401);
    }
    expect((await feedback(router.url, body, { authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await feedback(router.url, body, { authorization: `Bearer ${token}` })).status).toBe(409);
    expect(await rejectedByReason(router.url, 'fd')).toMatchObject({
      unauthorized: 3,
      forbidden: 2,
      duplicate: 1,
    });

    // The token is nowhere to be read: not in the route, the metrics, or a log line.
    const route = await getRoute(router.url, 'fd');
    expect(route?.feedback?.tokenSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(route)).not.toContain(token);
    expect(await metricsText(router.url)).not.toContain(token);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(token);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it(
    'keeps every sum finite and within its count under 10 000 random feedback bodies',
    { timeout: 180_000 },
    async () => {
      const stub = await startStubModelServer();
      const router = await startTestRouter();
      const models = { fz: 'binary', fc: { bounded: { min: -1e300, max: 1e300 } } } as const;
      const units = ['a', 'b', 'c', 'd'];
      const ids = Array.from({ length: 20 }, (_, i) => `id-${i}`);
      for (const [model, reward] of Object.entries(models)) {
        await putRoute(router.url, model, {
          variants: [
            { name: 'v1', endpoints: [stub.url], weight: 50 },
            { name: 'v2', endpoints: [stub.url], weight: 50 },
          ],
          reward,
        });
        for (const id of ids) await infer(router.url, model, { 'x-request-id': id });
        for (const u of units) await infer(router.url, model, { 'x-runway-unit': u });
      }
      const numberText = fc.oneof(
        fc.double().map((x) => (Number.isFinite(x) ? String(x) : x > 0 ? '1e999' : x < 0 ? '-1e999' : 'NaN')),
        fc.constantFrom(
          '0',
          '1',
          '1e308',
          '-1e308',
          '1e400',
          '-0',
          '5e-324',
          '0.5',
          '"1"',
          'null',
          'true',
          '[]',
        ),
        fc.integer().map(String),
      );
      const key = fc.oneof(
        fc.record({ requestId: fc.oneof(fc.constantFrom(...ids), fc.string()) }),
        fc.record({ unit: fc.oneof(fc.constantFrom(...units), fc.string()) }),
        fc.record({ requestId: fc.constantFrom(...ids), unit: fc.constantFrom(...units) }),
        fc.constant({}),
      );
      const bodyText = fc
        .oneof(
          { weight: 8, arbitrary: fc.tuple(fc.constantFrom('fz', 'fc', 'none', ''), key, numberText) },
          { weight: 1, arbitrary: fc.string().map((s) => ['raw', s] as const) },
        )
        .map((t) => {
          if (t[0] === 'raw') return t[1];
          const [model, k, reward] = t as [string, Record<string, string>, string];
          const fields = [
            `"model":${JSON.stringify(model)}`,
            ...Object.entries(k).map(([f, v]) => `${JSON.stringify(f)}:${JSON.stringify(v)}`),
            `"reward":${reward}`,
          ];
          return `{${fields.join(',')}}`;
        });
      const pool = new Pool(router.url, { connections: 8 });
      const statuses = new Map<number, number>();
      let sent = 0;
      await fc.assert(
        fc.asyncProperty(bodyText, async (body) => {
          const res = await pool.request({ path: '/v1/feedback', method: 'POST', body });
          const answer = (await res.body.json()) as { error?: string };
          sent++;
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          // A refusal is always the client's fault, with a message; never a router error.
          if (res.statusCode !== 200) {
            expect([400, 404, 409]).toContain(res.statusCode);
            expect(typeof answer.error).toBe('string');
          }
        }),
        { numRuns: 10_000, seed: 20_26 },
      );
      await pool.close();
      expect(sent).toBe(10_000);
      const source = new ScrapeMetricsSource({ url: router.url });
      for (const model of Object.keys(models)) {
        const snap = await source.snapshot(model);
        let count = 0;
        for (const v of Object.values(snap.variants)) {
          expect(Number.isFinite(v.rewards.sum)).toBe(true);
          expect(v.rewards.sum).toBeGreaterThanOrEqual(0);
          expect(v.rewards.sum).toBeLessThanOrEqual(v.rewards.count);
          count += v.rewards.count;
        }
        // One reward per slot at most: 20 ids + 4 units, the first of which each may be shared.
        expect(count).toBeLessThanOrEqual(ids.length + units.length);
        expect(count).toBeGreaterThan(0);
      }
      console.info(`10 000 random feedback bodies: ${JSON.stringify(Object.fromEntries(statuses))}`);
      expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
      expect(statuses.get(409) ?? 0).toBeGreaterThan(0);
    },
  );
});

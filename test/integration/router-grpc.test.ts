/**
 * The router's gRPC front door in front of real model servers (runway serve in process, real
 * onnxruntime, demo fraud models v1 and v2): Triton's Python client through it, weights and
 * sticky units that agree with HTTP, mirror, failover when a replica is gone or has no gRPC,
 * per-variant metrics and feedback attribution for gRPC requests.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot, toolCacheDir } from '../../common/paths';
import type { RunningRouter } from '../../serving/router/server';
import { startModelServer, type ModelServer } from '../../serving/server';
import type { ModelInferResponse } from '../../serving/server/grpc-messages';
import { floatsOf, oipClient, rawFloats, type OipClient } from '../helpers/grpc';
import { closeAll, putRoute, spawnRouterProcess, startTestRouter } from '../helpers/router';

const run = promisify(execFile);
const PYTHON = path.join(toolCacheDir(), 'py/bin/python');
const MODEL = (v: number): string => path.join(projectRoot, `demo/models/fraud-v${v}.onnx`);
const servers: ModelServer[] = [];
const clients: OipClient[] = [];
let v1: ModelServer;
let v2: ModelServer;
let router: RunningRouter;
let c: OipClient;
const sessions = new Map<string, ort.InferenceSession>();

const row = (i: number): number[] => Array.from({ length: 8 }, (_, k) => ((i * 7 + k * 3) % 10) / 5 - 1);

async function serve(version: number, grpcOn = true): Promise<ModelServer> {
  const s = await startModelServer({
    model: MODEL(version),
    name: 'fraud',
    version: String(version),
    port: 0,
    ...(grpcOn ? { grpcPort: 0 } : {}),
    logSink: () => undefined,
  });
  servers.push(s);
  return s;
}

async function expected(variant: string, values: number[]): Promise<number> {
  let session = sessions.get(variant);
  if (!session) {
    session = await ort.InferenceSession.create(MODEL(Number(variant.slice(1))));
    sessions.set(variant, session);
  }
  const out = await session.run({ features: new ort.Tensor('float32', Float32Array.from(values), [1, 8]) });
  return (out.score!.data as Float32Array)[0]!;
}

const infer = (i: number, metadata: Record<string, string> = {}, id?: string) =>
  c.call<ModelInferResponse>(
    'ModelInfer',
    {
      model_name: 'fraud',
      ...(id ? { id } : {}),
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8] }],
      raw_input_contents: [rawFloats(row(i))],
    },
    metadata,
  );

const variantOf = (md: grpc.Metadata): string => String(md.get('x-runway-variant')[0] ?? '');

async function counters(): Promise<Map<string, number>> {
  const m = await router.metrics.requests.get();
  return new Map(m.values.map((v) => [`${v.labels.variant}/${v.labels.code_class}`, v.value]));
}

async function setRoute(route: unknown): Promise<void> {
  const res = await putRoute(router.url, 'fraud', route);
  if (res.status !== 200) throw new Error(`route refused: ${JSON.stringify(res.body)}`);
}

beforeAll(async () => {
  [v1, v2] = await Promise.all([serve(1), serve(2)]);
  router = await startTestRouter({ grpcPort: 0 });
  if (!router.grpcAddress) throw new Error('router has no gRPC address');
  c = oipClient(router.grpcAddress);
  clients.push(c);
});
afterAll(async () => {
  for (const x of clients) x.close();
  await closeAll();
  await Promise.all(servers.map((s) => s.close()));
});

describe('router gRPC front door', () => {
  it("carries Triton's Python client (tritonclient.grpc) to the variant; outputs equal onnxruntime's; mirrors", async () => {
    if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run \`bash scripts/tools.sh python\``);
    await setRoute({
      variants: [
        { name: 'v1', endpoints: [v1.url], weight: 100 },
        { name: 'v2', endpoints: [v2.url], weight: 0 },
      ],
      mirror: { variant: 'v2', percent: 100, threshold: 0.5 },
    });
    const before = await counters();
    const { stdout } = await run(
      PYTHON,
      [path.join(projectRoot, 'test/python/oip_grpc_client.py'), router.grpcAddress!, 'fraud', 'user-7'],
      { timeout: 60_000 },
    );
    const report = JSON.parse(stdout) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the script's JSON report
    expect(report.live).toBe(true);
    expect(report.model_ready).toBe(true);
    expect(report.server_metadata.name).toBe('runway-router');
    expect(report.model_metadata).toMatchObject({ name: 'fraud', versions: ['1'] });
    const rows = report.rows as number[][];
    const got = (report.infer.score as number[][]).flat();
    const session = await ort.InferenceSession.create(MODEL(1));
    const out = await session.run({
      features: new ort.Tensor('float32', Float32Array.from(rows.flat()), [4, 8]),
    });
    const want = Array.from(out.score!.data as Float32Array);
    expect(got).toHaveLength(want.length);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    expect(report.infer.id).toBe('py-grpc');
    // The replica's own refusal passes through with its code; the router's own says what it lacks.
    expect(report.bad_request.status).toBe('StatusCode.INVALID_ARGUMENT');
    expect(report.bad_request.message).toMatch(/shape \[1, 3\]/);
    const after = await counters();
    // ModelReady, ModelMetadata, two inferences: all counted on v1 like HTTP requests.
    expect((after.get('v1/2xx') ?? 0) - (before.get('v1/2xx') ?? 0)).toBe(3);
    expect((after.get('v1/4xx') ?? 0) - (before.get('v1/4xx') ?? 0)).toBe(1);
    // The mirror compared the shadow's answers with the primary's (v2 differs from v1).
    await expect
      .poll(
        async () => {
          const m = await router.metrics.shadowComparisons.get();
          return m.values.filter((v) => v.labels.variant === 'v2').reduce((n, v) => n + v.value, 0);
        },
        { timeout: 10_000 },
      )
      .toBe(2);
    const cmp = await router.metrics.shadowComparisons.get();
    const results = Object.fromEntries(cmp.values.map((v) => [v.labels.result, v.value]));
    expect(results.error).toBe(0);
    // Mirrored over gRPC, the outputs feed the shadow's shift test as HTTP's do: every score of
    // the 4-row inference moved or stayed, and each is a decision at the route's threshold.
    const total = async (c: typeof router.metrics.shadowMoves): Promise<number> =>
      (await c.get()).values.filter((v) => v.labels.variant === 'v2').reduce((n, v) => n + v.value, 0);
    expect(await total(router.metrics.shadowMoves)).toBeGreaterThanOrEqual(4);
    expect(await total(router.metrics.shadowDecisions)).toBe(await total(router.metrics.shadowMoves));
  });

  it('splits by weight, keeps sticky units where HTTP puts them, answers with the chosen variant', async () => {
    await setRoute({
      variants: [
        { name: 'v1', endpoints: [v1.url], weight: 50 },
        { name: 'v2', endpoints: [v2.url], weight: 50 },
      ],
    });
    const before = await counters();
    const seen: Record<string, number> = { v1: 0, v2: 0 };
    const N = 400;
    for (let batch = 0; batch < N / 16; batch++) {
      const outcomes = await Promise.all(Array.from({ length: 16 }, (_, k) => infer(batch * 16 + k)));
      for (const [k, o] of outcomes.entries()) {
        if (!o.ok) throw new Error(`infer failed: ${o.details}`);
        const variant = variantOf(o.metadata);
        seen[variant] = (seen[variant] ?? 0) + 1;
        if (k === 0) {
          // The answer is that variant's model's.
          const want = await expected(variant, row(batch * 16 + k));
          expect(floatsOf(o.value.raw_output_contents[0]!)[0]).toBeCloseTo(want, 6);
        }
      }
    }
    // Binomial(400, 0.5): sd 10; ±60 is six of them.
    expect(seen.v1).toBeGreaterThan(N / 2 - 60);
    expect(seen.v2).toBeGreaterThan(N / 2 - 60);
    const after = await counters();
    for (const v of ['v1', 'v2'])
      expect((after.get(`${v}/2xx`) ?? 0) - (before.get(`${v}/2xx`) ?? 0)).toBe(seen[v]);

    for (let u = 0; u < 20; u++) {
      const unit = `unit-${u}`;
      const http = await request(`${router.url}/v2/models/fraud/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-runway-unit': unit },
        body: JSON.stringify({
          inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: row(u) }],
        }),
      });
      await http.body.text();
      const httpVariant = String(http.headers['x-runway-variant']);
      for (let k = 0; k < 3; k++) {
        const o = await infer(u, { 'x-runway-unit': unit });
        expect(o.ok).toBe(true);
        expect(variantOf(o.metadata), unit).toBe(httpVariant);
      }
    }
  });

  it('sends a blue-green preview by its metadata header to the candidate, as HTTP does', async () => {
    await setRoute({
      variants: [
        { name: 'v1', endpoints: [v1.url], weight: 100 },
        { name: 'v2', endpoints: [v2.url], weight: 0 },
      ],
      preview: { variant: 'v2', header: 'x-runway-preview', value: 'qa' },
    });
    const variants = async (metadata: Record<string, string>): Promise<string[]> => {
      const out: string[] = [];
      for (let k = 0; k < 8; k++) {
        const o = await infer(k, metadata);
        if (!o.ok) throw new Error(`infer failed: ${o.details}`);
        out.push(variantOf(o.metadata));
      }
      return [...new Set(out)];
    };
    expect(await variants({ 'x-runway-preview': 'qa' })).toEqual(['v2']);
    expect(await variants({ 'x-runway-preview': 'someone-else' })).toEqual(['v1']);
    expect(await variants({})).toEqual(['v1']);
    const http = await request(`${router.url}/v2/models/fraud/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-runway-preview': 'qa' },
      body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: row(1) }] }),
    });
    await http.body.text();
    expect(http.headers['x-runway-variant']).toBe('v2');
  });

  it('attributes feedback to the variant that served a gRPC request id or unit', async () => {
    const byId = await infer(1, {}, 'grpc-fb-1');
    expect(byId.ok).toBe(true);
    const fb = await request(`${router.url}/v1/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fraud', requestId: 'grpc-fb-1', reward: 1 }),
    });
    expect(fb.statusCode).toBe(200);
    expect(((await fb.body.json()) as { variant: string }).variant).toBe(variantOf(byId.metadata));
    // One reward per request: the id from metadata names one request, the unit another one's window
    // (a request that opens a unit's window shares its reward with that unit: serving/router/feedback.ts).
    const byHeader = await infer(2, { 'x-request-id': 'grpc-fb-2' });
    const byUnit = await infer(3, { 'x-runway-unit': 'fb-unit' });
    for (const [body, served] of [
      [{ model: 'fraud', requestId: 'grpc-fb-2', reward: 0 }, byHeader],
      [{ model: 'fraud', unit: 'fb-unit', reward: 1 }, byUnit],
    ] as const) {
      const r = await request(`${router.url}/v1/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(r.statusCode).toBe(200);
      expect(((await r.body.json()) as { variant: string }).variant).toBe(variantOf(served.metadata));
    }
    // The same request rewarded again through its id is a repeat.
    const again = await request(`${router.url}/v1/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fraud', requestId: 'grpc-fb-2', reward: 1 }),
    });
    expect(again.statusCode).toBe(409);
    await again.body.text();
  });

  it('fails over to the baseline when a replica is gone or serves no gRPC, and charges that variant', async () => {
    const doomed = await serve(2);
    const httpOnly = await serve(2, false);
    await setRoute({
      variants: [
        { name: 'v1', endpoints: [v1.url], weight: 50 },
        { name: 'v2', endpoints: [doomed.url], weight: 50 },
      ],
    });
    // First calls reach the doomed replica over gRPC (its port is learnt), then it goes away.
    for (let i = 0; i < 10; i++) expect((await infer(i)).ok).toBe(true);
    await doomed.close();
    const failovers = async (): Promise<number> =>
      (await router.metrics.failovers.get()).values
        .filter((v) => v.labels.from === 'v2' && v.labels.to === 'v1')
        .reduce((n, v) => n + v.value, 0);
    const f0 = await failovers();
    const before = await counters();
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => infer(i)));
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(outcomes.every((o) => variantOf(o.metadata) === 'v1')).toBe(true);
    const after = await counters();
    expect(await failovers()).toBeGreaterThan(f0);
    expect((after.get('v2/5xx') ?? 0) - (before.get('v2/5xx') ?? 0)).toBe((await failovers()) - f0);

    await setRoute({
      variants: [
        { name: 'v1', endpoints: [v1.url], weight: 50 },
        { name: 'v2', endpoints: [httpOnly.url], weight: 50 },
      ],
    });
    const more = await Promise.all(Array.from({ length: 20 }, (_, i) => infer(i)));
    expect(more.filter((o) => !o.ok)).toEqual([]);
    const reasons = await router.metrics.upstreamErrors.get();
    const noGrpc = reasons.values.find((v) => v.labels.variant === 'v2' && v.labels.reason === 'no_grpc');
    expect(noGrpc?.value ?? 0).toBeGreaterThan(0);
  });

  it('answers NOT_FOUND for a model without a route and serves health itself', async () => {
    const r = await c.call('ModelInfer', { model_name: 'unrouted', inputs: [] });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe(grpc.status.NOT_FOUND);
      expect(r.details).toMatch(/no route for model "unrouted"/);
    }
    const empty = await c.call('ModelInfer', { model_name: '' });
    expect(!empty.ok && empty.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await c.call('ServerLive', {})).toMatchObject({ ok: true, value: { live: true } });
    expect(await c.call('ServerReady', {})).toMatchObject({ ok: true, value: { ready: true } });
  });

  it('runway router --grpc-port opens the door from the CLI and prints its address', async () => {
    if (!fs.existsSync(path.join(projectRoot, 'dist/cli/main.js')))
      throw new Error('dist/ is missing: build first');
    const p = await spawnRouterProcess(['--grpc-port', '0']);
    expect(p.grpc).toMatch(/^127\.0\.0\.1:\d+$/);
    const pc = oipClient(p.grpc!);
    clients.push(pc);
    expect(await pc.call('ServerLive', {})).toMatchObject({ ok: true, value: { live: true } });
    await p.stop();
  });
});

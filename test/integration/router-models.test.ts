/**
 * The router in front of real `runway serve` processes serving the demo fraud models (real
 * onnxruntime-node sessions; needs a build and `npm run demo:models`): answers through the router equal direct answers (JSON and binary tensors), traffic
 * splits by weight, a shadow of the same model agrees, a shadow of a different model does not,
 * and feedback lands on the variant that served.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool, request } from 'undici';
import { projectRoot } from '../../common/paths';
import { ScrapeMetricsSource } from '../../serving/metrics/scrape';
import { closeAll, putRoute, startTestRouter } from '../helpers/router';
import { startServe, type ServeProcess } from '../helpers/server';

const models = path.join(projectRoot, 'demo', 'models');
const servers: ServeProcess[] = [];

async function serve(file: string): Promise<ServeProcess> {
  const s = await startServe(['--model', path.join(models, file), '--name', 'fraud', '--threads', '1']);
  servers.push(s);
  return s;
}

let v1: ServeProcess;
let v1b: ServeProcess;
let v2: ServeProcess;

beforeAll(async () => {
  [v1, v1b, v2] = await Promise.all([serve('fraud-v1.onnx'), serve('fraud-v1.onnx'), serve('fraud-v2.onnx')]);
});

afterAll(async () => {
  await closeAll();
  await Promise.allSettled(servers.map((s) => s.stop()));
});

const rows = [
  [0.1, 0.9, 0.3, 0.7, 0.2, 0.5, 0.4, 0.6],
  [0.8, 0.1, 0.9, 0.95, 0.3, 0.2, 0.1, 0.7],
];
const jsonBody = JSON.stringify({
  inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 8], data: rows.flat() }],
});

function binaryBody(): { body: Buffer; headerLength: number } {
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 8], parameters: { binary_data_size: 64 } }],
      outputs: [{ name: 'score', parameters: { binary_data: true } }],
    }),
  );
  const tensor = Buffer.alloc(64);
  rows.flat().forEach((v, i) => tensor.writeFloatLE(v, i * 4));
  return { body: Buffer.concat([header, tensor]), headerLength: header.length };
}

async function post(base: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await request(`${base}/v2/models/fraud/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

describe('router in front of real model servers', () => {
  it('answers exactly what the served variant answers, JSON and binary, and splits by weight', async () => {
    const router = await startTestRouter();
    const put = await putRoute(router.url, 'fraud', {
      variants: [
        { name: 'v1', endpoints: [v1.url], weight: 60 },
        { name: 'v2', endpoints: [v2.url], weight: 40 },
      ],
    });
    expect(put.status).toBe(200);
    const direct = { v1: await post(v1.url, jsonBody), v2: await post(v2.url, jsonBody) };
    expect(direct.v1.status).toBe(200);
    expect(direct.v1.body.equals(direct.v2.body)).toBe(false); // different models, different scores

    const pool = new Pool(router.url, { connections: 8 });
    const counts = { v1: 0, v2: 0 };
    const n = 1000;
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = w; i < n; i += 8) {
          const res = await pool.request({ path: '/v2/models/fraud/infer', method: 'POST', body: jsonBody });
          const body = Buffer.from(await res.body.arrayBuffer());
          const variant = res.headers['x-runway-variant'] as 'v1' | 'v2';
          expect(res.statusCode).toBe(200);
          expect(body.equals(direct[variant].body)).toBe(true);
          counts[variant]++;
        }
      }),
    );
    await pool.close();
    // ±5 pp here (1,000 requests through real sessions); the ±2 pp split over 6,000 is in router-mechanics.
    expect(Math.abs(counts.v1 / n - 0.6)).toBeLessThan(0.05);

    const bin = binaryBody();
    const binHeaders = {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(bin.headerLength),
    };
    const unitHeader = { 'x-runway-unit': 'binary-user' };
    const viaRouter = await post(router.url, bin.body, { ...binHeaders, ...unitHeader });
    const variant = viaRouter.headers['x-runway-variant'] as 'v1' | 'v2';
    const straight = await post(variant === 'v1' ? v1.url : v2.url, bin.body, binHeaders);
    expect(viaRouter.status).toBe(200);
    expect(straight.headers['inference-header-content-length']).toBeDefined();
    expect(viaRouter.headers['inference-header-content-length']).toBe(
      straight.headers['inference-header-content-length'],
    );
    expect(viaRouter.body.equals(straight.body)).toBe(true);

    const snap = await new ScrapeMetricsSource({ url: router.url }).snapshot('fraud');
    expect(snap.variants.v1!.requests + snap.variants.v2!.requests).toBe(n + 1);
  });

  it('counts a same-model shadow as agreeing and a different-model shadow as disagreeing; feedback by id', async () => {
    const router = await startTestRouter({ mirrorConcurrency: 100 });
    const route = (shadowUrl: string) => ({
      variants: [
        { name: 'v1', endpoints: [v1.url], weight: 100 },
        { name: 'shadow', endpoints: [shadowUrl], weight: 0 },
      ],
      mirror: { variant: 'shadow', percent: 100 },
    });
    const source = new ScrapeMetricsSource({ url: router.url });
    const settle = async (want: (s: { agree: number; disagree: number; error: number }) => boolean) => {
      for (let i = 0; i < 250; i++) {
        const s = (await source.snapshot('fraud')).variants.shadow!.shadow;
        if (want(s)) return s;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(
        `shadow counts did not settle: ${JSON.stringify((await source.snapshot('fraud')).variants.shadow)}`,
      );
    };

    expect((await putRoute(router.url, 'fraud', route(v1b.url))).status).toBe(200);
    for (let i = 0; i < 20; i++) {
      const body = JSON.stringify({ id: `same-${i}`, ...JSON.parse(jsonBody) });
      expect((await post(router.url, body)).status).toBe(200);
    }
    const same = await settle((s) => s.agree + s.disagree + s.error === 20);
    expect(same).toMatchObject({ agree: 20, disagree: 0, error: 0 });

    expect((await putRoute(router.url, 'fraud', route(v2.url))).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await post(router.url, jsonBody)).status).toBe(200);
    const diff = await settle((s) => s.agree + s.disagree + s.error === 40);
    expect(diff).toMatchObject({ agree: 20, disagree: 20, error: 0 });

    const fb = await request(`${router.url}/v1/feedback`, {
      method: 'POST',
      body: JSON.stringify({ model: 'fraud', requestId: 'same-3', reward: 1 }),
    });
    expect(fb.statusCode).toBe(200);
    expect(await fb.body.json()).toEqual({ model: 'fraud', variant: 'v1', reward: 1 });
  });
});

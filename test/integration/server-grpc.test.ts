/**
 * The model server's OIP gRPC service, as a real `runway serve --grpc-port` process (compiled
 * CLI): Triton's own Python client (tritonclient.grpc) with outputs equal to onnxruntime's, a
 * grpc-js client for every kind of bad input (each its own status code, the server alive after),
 * the same metrics as HTTP, drain on SIGTERM, and TLS.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot, toolCacheDir } from '../../common/paths';
import type { ModelInferResponse } from '../../serving/server/grpc-messages';
import { floatsOf, oipClient, rawFloats, type OipClient } from '../helpers/grpc';
import { serveFailure, startServe, type ServeProcess } from '../helpers/server';

const run = promisify(execFile);
const FRAUD = path.join(projectRoot, 'demo/models/fraud-v1.onnx');
const PYTHON = path.join(toolCacheDir(), 'py/bin/python');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-grpc-test-'));
const started: ServeProcess[] = [];
const clients: OipClient[] = [];

const row = (i: number): number[] => Array.from({ length: 8 }, (_, k) => ((i * 7 + k * 3) % 10) / 5 - 1);

async function serve(args: string[]): Promise<ServeProcess> {
  const s = await startServe(args);
  started.push(s);
  if (!s.grpc) throw new Error(`no gRPC address in the ready line; stderr:\n${s.stderr()}`);
  return s;
}

function client(address: string, credentials?: grpc.ChannelCredentials): OipClient {
  const c = oipClient(address, credentials);
  clients.push(c);
  return c;
}

async function onnxScores(rows: number[][]): Promise<number[]> {
  const session = await ort.InferenceSession.create(FRAUD);
  const out = await session.run({
    features: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 8]),
  });
  return Array.from(out.score!.data as Float32Array);
}

beforeAll(() => {
  if (!fs.existsSync(path.join(projectRoot, 'dist/cli/main.js'))) {
    throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` first');
  }
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(started.map((s) => s.stop('SIGKILL')));
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('runway serve --grpc-port', () => {
  let s: ServeProcess;
  let c: OipClient;
  beforeAll(async () => {
    s = await serve([
      '--model',
      FRAUD,
      '--name',
      'fraud',
      '--version',
      '3',
      '--grpc-port',
      '0',
      '--max-body-bytes',
      '65536',
    ]);
    c = client(s.grpc!);
  });

  it("works with Triton's Python client (tritonclient.grpc): outputs equal onnxruntime's", async () => {
    if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run \`bash scripts/tools.sh python\``);
    const { stdout } = await run(
      PYTHON,
      [path.join(projectRoot, 'test/python/oip_grpc_client.py'), s.grpc!, 'fraud'],
      {
        timeout: 60_000,
      },
    );
    const report = JSON.parse(stdout) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the script's JSON report
    expect(report.live).toBe(true);
    expect(report.ready).toBe(true);
    expect(report.model_ready).toBe(true);
    expect(report.server_metadata).toMatchObject({
      name: 'runway',
      extensions: expect.arrayContaining(['binary_tensor_data']),
    });
    expect(report.model_metadata).toMatchObject({
      name: 'fraud',
      versions: ['3'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'features', datatype: 'FP32', shape: ['-1', '8'] }],
      outputs: [{ name: 'score', datatype: 'FP32', shape: ['-1', '1'] }],
    });
    const want = await onnxScores(report.rows as number[][]);
    expect(report.infer.id).toBe('py-grpc');
    expect(report.infer.model_name).toBe('fraud');
    const got = (report.infer.score as number[][]).flat();
    expect(got).toHaveLength(want.length);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    expect(report.bad_request.status).toBe('StatusCode.INVALID_ARGUMENT');
    expect(report.bad_request.message).toMatch(/shape \[1, 3\] does not match the model's \[-1, 8\]/);
    expect(report.unknown_model.status).toBe('StatusCode.NOT_FOUND');
    expect(report.unknown_model.message).toMatch(/unknown model "no-such-model"/);
  });

  it('answers typed contents and raw contents alike, with the request id', async () => {
    const rows = [row(1), row(2)];
    const want = await onnxScores(rows);
    const raw = await c.call<ModelInferResponse>('ModelInfer', {
      model_name: 'fraud',
      id: 'r-1',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 8] }],
      raw_input_contents: [rawFloats(rows.flat())],
    });
    const typed = await c.call<ModelInferResponse>('ModelInfer', {
      model_name: 'fraud',
      model_version: '3',
      inputs: [
        { name: 'features', datatype: 'FP32', shape: [2, 8], contents: { fp32_contents: rows.flat() } },
      ],
      outputs: [{ name: 'score' }],
    });
    for (const r of [raw, typed]) {
      if (!r.ok) throw new Error(`infer failed: ${r.details}`);
      expect(r.value.outputs[0]).toMatchObject({ name: 'score', datatype: 'FP32', shape: ['2', '1'] });
      floatsOf(r.value.raw_output_contents[0]!).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    }
    expect(raw.ok && raw.value.id).toBe('r-1');
  });

  it('gives bad input its own status code and a message naming the field; the server stays alive', async () => {
    const input = (shape: number[], datatype = 'FP32') => [{ name: 'features', datatype, shape }];
    const cases: { name: string; request: unknown; code: grpc.status; message: RegExp }[] = [
      {
        name: 'unknown model',
        request: { model_name: 'nope', inputs: input([1, 8]), raw_input_contents: [rawFloats(row(0))] },
        code: grpc.status.NOT_FOUND,
        message: /unknown model "nope"; this server serves "fraud"/,
      },
      {
        name: 'unknown version',
        request: {
          model_name: 'fraud',
          model_version: '9',
          inputs: input([1, 8]),
          raw_input_contents: [rawFloats(row(0))],
        },
        code: grpc.status.NOT_FOUND,
        message: /unknown version "9"/,
      },
      {
        name: 'wrong shape',
        request: {
          model_name: 'fraud',
          inputs: input([2, 3]),
          raw_input_contents: [rawFloats(new Array(6).fill(0))],
        },
        code: grpc.status.INVALID_ARGUMENT,
        message: /input "features": shape \[2, 3\] does not match the model's \[-1, 8\]/,
      },
      {
        name: 'wrong datatype',
        request: {
          model_name: 'fraud',
          inputs: input([1, 8], 'FP64'),
          raw_input_contents: [Buffer.alloc(64)],
        },
        code: grpc.status.INVALID_ARGUMENT,
        message: /datatype FP64 does not match the model's FP32/,
      },
      {
        name: 'truncated raw contents',
        request: {
          model_name: 'fraud',
          inputs: input([2, 8]),
          raw_input_contents: [rawFloats(row(0)).subarray(0, 10)],
        },
        code: grpc.status.INVALID_ARGUMENT,
        message: /raw_input_contents\[0\] is 10 bytes but shape \[2, 8\] of FP32 needs 64/,
      },
      {
        name: 'raw contents for no input',
        request: {
          model_name: 'fraud',
          inputs: input([1, 8]),
          raw_input_contents: [rawFloats(row(0)), rawFloats(row(1))],
        },
        code: grpc.status.INVALID_ARGUMENT,
        message: /raw_input_contents has 2 entries but the request has 1 inputs/,
      },
      {
        name: 'too few typed contents',
        request: {
          model_name: 'fraud',
          inputs: [
            { name: 'features', datatype: 'FP32', shape: [1, 8], contents: { fp32_contents: [1, 2, 3] } },
          ],
        },
        code: grpc.status.INVALID_ARGUMENT,
        message: /contents.fp32_contents has 3 elements but shape \[1, 8\] needs 8/,
      },
      {
        name: 'batch over the limit',
        request: {
          model_name: 'fraud',
          inputs: input([64, 8]),
          raw_input_contents: [rawFloats(new Array(512).fill(0))],
        },
        code: grpc.status.INVALID_ARGUMENT,
        message: /batch size 64 exceeds the model's max batch size 32/,
      },
      {
        name: 'unknown output',
        request: {
          model_name: 'fraud',
          inputs: input([1, 8]),
          outputs: [{ name: 'logits' }],
          raw_input_contents: [rawFloats(row(0))],
        },
        code: grpc.status.INVALID_ARGUMENT,
        message: /unknown output "logits"/,
      },
      {
        name: 'oversized message',
        request: {
          model_name: 'fraud',
          inputs: input([2048, 8]),
          raw_input_contents: [Buffer.alloc(2048 * 8 * 4)],
        },
        code: grpc.status.RESOURCE_EXHAUSTED,
        message: /larger than max|exceeds|too large/i,
      },
    ];
    for (const k of cases) {
      const r = await c.call('ModelInfer', k.request);
      expect(r.ok, k.name).toBe(false);
      if (r.ok) continue;
      expect({ name: k.name, code: grpc.status[r.code] }).toEqual({
        name: k.name,
        code: grpc.status[k.code],
      });
      expect(r.details, k.name).toMatch(k.message);
      // A runway error says which HTTP status it is, so the router tells it from a broken connection.
      if (k.code !== grpc.status.RESOURCE_EXHAUSTED)
        expect(r.metadata.get('x-runway-status')[0], k.name).toMatch(/^4\d\d$/);
    }
    expect((await c.call('ModelReady', { name: 'nope' })).ok).toBe(false);
    expect(await c.call('ServerLive', {})).toMatchObject({ ok: true, value: { live: true } });
    const good = await c.call('ModelInfer', {
      model_name: 'fraud',
      inputs: input([1, 8]),
      raw_input_contents: [rawFloats(row(3))],
    });
    expect(good.ok).toBe(true);
    expect(s.child.exitCode).toBeNull();
  });

  it('counts gRPC inference in the same metrics as HTTP and names its port in GET /v2', async () => {
    const metricsOf = async (): Promise<Record<string, number>> => {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      const out: Record<string, number> = {};
      for (const m of text.matchAll(/^runway_server_requests_total\{[^}]*status="(\w+)"[^}]*\} (\d+)/gm))
        out[m[1]!] = Number(m[2]);
      return out;
    };
    const before = await metricsOf();
    for (let i = 0; i < 5; i++) {
      const r = await c.call('ModelInfer', {
        model_name: 'fraud',
        inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8] }],
        raw_input_contents: [rawFloats(row(i))],
      });
      expect(r.ok).toBe(true);
    }
    await c.call('ModelInfer', {
      model_name: 'fraud',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 3] }],
      raw_input_contents: [Buffer.alloc(12)],
    });
    const after = await metricsOf();
    expect((after.success ?? 0) - (before.success ?? 0)).toBe(5);
    expect((after.failure ?? 0) - (before.failure ?? 0)).toBe(1);
    const meta = (await (await fetch(`${s.url}/v2`)).json()) as { grpc_port?: number };
    expect(`127.0.0.1:${meta.grpc_port}`).toBe(s.grpc);
  });

  it('drains on SIGTERM: every call either answered or refused UNAVAILABLE, exit 0', async () => {
    const d = await serve([
      '--model',
      FRAUD,
      '--name',
      'fraud',
      '--grpc-port',
      '0',
      '--max-queue-delay-ms',
      '20',
    ]);
    const dc = client(d.grpc!);
    let first!: () => void;
    const firstAnswered = new Promise<void>((r) => (first = r));
    const calls = Array.from({ length: 40 }, (_, i) =>
      dc
        .call('ModelInfer', {
          model_name: 'fraud',
          inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8] }],
          raw_input_contents: [rawFloats(row(i))],
        })
        .finally(() => first()),
    );
    await firstAnswered;
    const code = d.stop('SIGTERM');
    const outcomes = await Promise.all(calls);
    const codes = outcomes.map((o) => (o.ok ? 'OK' : grpc.status[o.code]));
    expect(codes.filter((x) => x !== 'OK' && x !== 'UNAVAILABLE')).toEqual([]);
    expect(codes.filter((x) => x === 'OK').length).toBeGreaterThan(0);
    expect(await code).toBe(0);
  });
});

describe('gRPC over TLS', () => {
  it('serves TLS with --grpc-tls-cert/--grpc-tls-key; a plaintext client is refused', async () => {
    const cert = path.join(tmp, 'cert.pem');
    const key = path.join(tmp, 'key.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    const s = await serve([
      '--model',
      FRAUD,
      '--name',
      'fraud',
      '--grpc-port',
      '0',
      '--grpc-tls-cert',
      cert,
      '--grpc-tls-key',
      key,
    ]);
    const port = s.grpc!.split(':').pop()!;
    const secure = client(`localhost:${port}`, grpc.credentials.createSsl(fs.readFileSync(cert)));
    expect(await secure.call('ServerLive', {})).toMatchObject({ ok: true, value: { live: true } });
    const r = await secure.call('ModelInfer', {
      model_name: 'fraud',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8] }],
      raw_input_contents: [rawFloats(row(5))],
    });
    expect(r.ok).toBe(true);
    const plain = await client(`localhost:${port}`).call('ServerLive', {});
    expect(plain.ok).toBe(false);
  });

  it('refuses a certificate without its key, naming both flags', async () => {
    const f = await serveFailure([
      '--model',
      FRAUD,
      '--name',
      'fraud',
      '--grpc-port',
      '0',
      '--grpc-tls-cert',
      '/nonexistent.pem',
    ]);
    expect(f.code).not.toBe(0);
    expect(f.stderr).toMatch(/--grpc-tls-cert and --grpc-tls-key: give both/);
  });
});

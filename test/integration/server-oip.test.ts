/**
 * Every OIP v2 endpoint of the model server, JSON and binary tensors, validation errors and
 * metrics: a real server on loopback in front of real onnxruntime sessions (demo fraud model).
 */
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import { startModelServer, type ModelServer } from '../../serving/server';

const MODEL = path.join(projectRoot, 'demo/models/fraud-v1.onnx');
let server: ModelServer;

async function call(method: string, p: string, body?: string | Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(server.url + p, { method, body, headers });
  const buf = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, buf, json: (): any => JSON.parse(buf.toString()) }; // eslint-disable-line @typescript-eslint/no-explicit-any -- test reads arbitrary JSON
}

const row = (i: number): number[] => Array.from({ length: 8 }, (_, k) => ((i * 7 + k * 3) % 10) / 5 - 1);

beforeAll(async () => {
  server = await startModelServer({ model: MODEL, name: 'fraud', version: '3', port: 0, maxBodyBytes: 4096 });
});
afterAll(async () => {
  await server?.close();
});

describe('OIP v2 endpoints', () => {
  it('health, server metadata, model metadata and readiness', async () => {
    expect((await call('GET', '/v2/health/live')).status).toBe(200);
    expect((await call('GET', '/v2/health/ready')).json()).toEqual({ ready: true });
    const meta = (await call('GET', '/v2')).json();
    expect(meta).toMatchObject({
      name: 'runway',
      extensions: expect.arrayContaining(['binary_tensor_data', 'statistics']),
    });
    for (const p of ['/v2/models/fraud', '/v2/models/fraud/versions/3']) {
      const m = (await call('GET', p)).json();
      expect(m).toMatchObject({
        name: 'fraud',
        versions: ['3'],
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
        outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
        parameters: { execution_provider: 'cpu', max_batch_size: 32 },
      });
    }
    expect((await call('GET', '/v2/models/fraud/ready')).status).toBe(200);
    expect((await call('GET', '/v2/models/fraud/versions/3/ready')).status).toBe(200);
  });

  it('404 for unknown models, versions and paths; 405 for wrong methods', async () => {
    const other = await call('GET', '/v2/models/other');
    expect(other.status).toBe(404);
    expect(other.json().error).toMatch(/unknown model "other"/);
    const v = await call('POST', '/v2/models/fraud/versions/9/infer', '{}');
    expect(v.status).toBe(404);
    expect(v.json().error).toMatch(/unknown version "9"/);
    expect((await call('GET', '/v2/nothing')).status).toBe(404);
    expect((await call('GET', '/v2/models/fraud/infer')).status).toBe(405);
  });

  it('infers with JSON tensors: nested data, id echoed, versioned path', async () => {
    const body = {
      id: 'req-7',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 8], data: [row(1), row(2)] }],
    };
    for (const p of ['/v2/models/fraud/infer', '/v2/models/fraud/versions/3/infer']) {
      const res = await call('POST', p, JSON.stringify(body));
      expect(res.status).toBe(200);
      const out = res.json();
      expect(out).toMatchObject({ model_name: 'fraud', model_version: '3', id: 'req-7' });
      expect(out.outputs[0]).toMatchObject({ name: 'score', datatype: 'FP32', shape: [2, 1] });
      expect(out.outputs[0].data).toHaveLength(2);
      for (const p of out.outputs[0].data) expect(p).toBeGreaterThanOrEqual(0);
    }
  });

  it('binary tensors in and out match the JSON answer', async () => {
    const rows = [row(3), row(4), row(5)];
    const viaJson = (
      await call(
        'POST',
        '/v2/models/fraud/infer',
        JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [3, 8], data: rows }] }),
      )
    ).json().outputs[0].data as number[];
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'features', datatype: 'FP32', shape: [3, 8], parameters: { binary_data_size: 96 } }],
        outputs: [{ name: 'score', parameters: { binary_data: true } }],
      }),
    );
    const body = Buffer.concat([header, Buffer.from(new Float32Array(rows.flat()).buffer)]);
    const res = await call('POST', '/v2/models/fraud/infer', body, {
      'inference-header-content-length': String(header.length),
      'content-type': 'application/octet-stream',
    });
    expect(res.status).toBe(200);
    const hlen = Number(res.headers.get('inference-header-content-length'));
    const h = JSON.parse(res.buf.subarray(0, hlen).toString());
    expect(h.outputs[0]).toMatchObject({
      name: 'score',
      shape: [3, 1],
      parameters: { binary_data_size: 12 },
    });
    const scores = new Float32Array(
      res.buf.buffer.slice(res.buf.byteOffset + hlen, res.buf.byteOffset + res.buf.length),
    );
    expect(Array.from(scores)).toEqual(viaJson);

    // The same binary request with no Content-Length (chunked, in pieces that split the tensor
    // and its header): answered the same.
    const chunked = await new Promise<{ status: number; buf: Buffer }>((resolve, reject) => {
      const req = http.request(
        `${server.url}/v2/models/fraud/infer`,
        {
          method: 'POST',
          headers: {
            'inference-header-content-length': String(header.length),
            'content-type': 'application/octet-stream',
          },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, buf: Buffer.concat(parts) }));
        },
      );
      req.on('error', reject);
      req.write(body.subarray(0, header.length + 5));
      req.end(body.subarray(header.length + 5));
    });
    expect(chunked.status).toBe(200);
    expect(chunked.buf).toEqual(res.buf);
  });

  it('accepts gzip- and deflate-compressed requests, as tritonclient can send them', async () => {
    const body = JSON.stringify({
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: row(9) }],
    });
    const plain = (await call('POST', '/v2/models/fraud/infer', body)).json().outputs[0].data;
    for (const [encoding, compress] of [
      ['gzip', zlib.gzipSync],
      ['deflate', zlib.deflateSync],
    ] as const) {
      const res = await call('POST', '/v2/models/fraud/infer', compress(body), {
        'content-encoding': encoding,
      });
      expect(res.status).toBe(200);
      expect(res.json().outputs[0].data).toEqual(plain);
    }
    const bomb = zlib.gzipSync(Buffer.alloc(100_000, 32));
    const res = await call('POST', '/v2/models/fraud/infer', bomb, { 'content-encoding': 'gzip' });
    expect(res.status).toBe(400);
    expect(res.json().error).toMatch(/decompressed request body exceeds the limit of 4096 bytes/);
  });

  it('answers each malformed request with a specific 400 and keeps serving', async () => {
    const cases: [string | Buffer, RegExp, Record<string, string>?][] = [
      ['{"inputs": [', /malformed JSON/],
      ['{"inputs": []}', /inputs/],
      [
        JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 8], data: row(0) }] }),
        /unknown input "x"/,
      ],
      [
        JSON.stringify({ inputs: [{ name: 'features', datatype: 'INT32', shape: [1, 8], data: row(0) }] }),
        /datatype INT32/,
      ],
      [
        JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 9], data: row(0) }] }),
        /shape \[1, 9\]/,
      ],
      [
        JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 8], data: row(0) }] }),
        /8 elements but shape \[2, 8\] needs 16/,
      ],
      [
        '{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"parameters":{"binary_data_size":32}}]}',
        /Inference-Header-Content-Length/,
        { 'inference-header-content-length': 'abc' },
      ],
      ['x'.repeat(5000), /exceeds the limit of 4096 bytes/],
    ];
    for (const [body, pattern, headers] of cases) {
      const res = await call('POST', '/v2/models/fraud/infer', body, headers);
      expect(res.status, String(pattern)).toBe(400);
      expect(res.json().error).toMatch(pattern);
    }
    expect((await call('GET', '/v2/health/live')).status).toBe(200);
  });

  it('statistics in Triton shape and Prometheus metrics', async () => {
    const stats = (await call('GET', '/v2/models/fraud/stats')).json();
    const s = stats.model_stats[0];
    expect(s).toMatchObject({ name: 'fraud', version: '3' });
    expect(s.inference_stats.success.count).toBeGreaterThanOrEqual(3);
    expect(s.inference_stats.fail.count).toBeGreaterThanOrEqual(8);
    for (const k of ['queue', 'compute_input', 'compute_infer', 'compute_output']) {
      expect(s.inference_stats[k].ns).toBeGreaterThan(0);
    }
    expect(s.batch_stats.length).toBeGreaterThan(0);
    expect((await call('GET', '/v2/models/stats')).json().model_stats[0].name).toBe('fraud');
    const text = (await call('GET', '/metrics')).buf.toString();
    expect(text).toMatch(/runway_server_requests_total\{model="fraud",version="3",status="success"\} [1-9]/);
    expect(text).toMatch(/runway_server_requests_total\{model="fraud",version="3",status="failure"\} [1-9]/);
    expect(text).toMatch(/runway_server_execution_provider\{model="fraud",version="3",provider="cpu"\} 1/);
    for (const name of [
      'runway_server_request_duration_seconds_bucket',
      'runway_server_queue_duration_seconds_bucket',
      'runway_server_compute_duration_seconds_bucket',
      'runway_server_batch_size_bucket',
      'runway_server_queue_depth',
      'runway_server_rejected_total',
      'runway_server_timed_out_total',
      'runway_server_model_load_seconds',
    ]) {
      expect(text).toContain(name);
    }
  });
});

describe('large JSON tensors', () => {
  it('a 3x48x192 image as JSON answers exactly what it answers as binary, and what onnxruntime answers', async () => {
    const file = path.join(projectRoot, 'demo/models/image-cnn.onnx');
    const image = await startModelServer({ model: file, name: 'image', port: 0, logSink: () => undefined });
    try {
      const pixels = Float32Array.from({ length: 2 * 3 * 48 * 192 }, (_, i) =>
        Math.fround(((i * 37) % 256) / 255 - 0.5),
      );
      const input = { name: 'image', datatype: 'FP32', shape: [2, 3, 48, 192] };
      const post = async (body: Buffer | string, headers: Record<string, string> = {}) => {
        const res = await fetch(`${image.url}/v2/models/image/infer`, { method: 'POST', body, headers });
        const text = await res.text();
        expect(res.status, text).toBe(200);
        return (JSON.parse(text) as { outputs: { data: number[] }[] }).outputs[0]!.data;
      };
      // Nested as a client's tolist() nests it, numbers printed in full.
      const nested = Array.from({ length: 2 }, (_, b) =>
        Array.from({ length: 3 }, (_, c) =>
          Array.from({ length: 48 }, (_, h) =>
            Array.from(pixels.subarray(((b * 3 + c) * 48 + h) * 192, ((b * 3 + c) * 48 + h + 1) * 192)),
          ),
        ),
      );
      const json = await post(JSON.stringify({ inputs: [{ ...input, data: nested }] }));
      const header = Buffer.from(
        JSON.stringify({ inputs: [{ ...input, parameters: { binary_data_size: pixels.byteLength } }] }),
      );
      const binary = await post(Buffer.concat([header, Buffer.from(pixels.buffer)]), {
        'inference-header-content-length': String(header.length),
      });
      expect(json).toEqual(binary);
      const ort = await import('onnxruntime-node');
      const session = await ort.InferenceSession.create(file);
      const want = (await session.run({ image: new ort.Tensor('float32', pixels, input.shape) }))
        .probabilities!;
      expect(json).toEqual(Array.from(want.data as Float32Array));
      const bad = await fetch(`${image.url}/v2/models/image/infer`, {
        method: 'POST',
        body: JSON.stringify({ inputs: [{ ...input, data: [...Array.from(pixels).slice(1), 'x'] }] }),
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toMatch(
        /data\[55295\] is "x", expected a number for FP32/,
      );
    } finally {
      await image.close();
    }
  });
});

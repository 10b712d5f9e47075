/**
 * `runway serve` as a process (compiled CLI): ready line, SIGTERM drain with work in flight,
 * startup failures that name the file, the CUDA fallback line, and Triton's own Python client
 * (tritonclient[http]) against it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot, toolCacheDir } from '../../common/paths';
import { serveFailure, startServe, type ServeProcess } from '../helpers/server';

const run = promisify(execFile);
const FRAUD = path.join(projectRoot, 'demo/models/fraud-v1.onnx');
const HEAVY = path.join(projectRoot, 'demo/models/heavy.onnx');
const PYTHON = path.join(toolCacheDir(), 'py/bin/python');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-serve-test-'));
const started: ServeProcess[] = [];

beforeAll(async () => {
  if (!fs.existsSync(path.join(projectRoot, 'dist/cli/main.js'))) {
    throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` first');
  }
});
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop('SIGKILL')));
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function serve(args: string[]): Promise<ServeProcess> {
  const s = await startServe(args);
  started.push(s);
  return s;
}

describe('runway serve', () => {
  it('drains in-flight requests on SIGTERM and exits 0', async () => {
    const s = await serve([
      '--model',
      HEAVY,
      '--name',
      'heavy',
      '--max-batch-size',
      '1024',
      '--threads',
      '1',
    ]);
    const big = Array.from({ length: 1024 * 8 }, (_, i) => Math.sin(i));
    const body = JSON.stringify({
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1024, 8], data: big }],
    });
    const inflight = Array.from({ length: 4 }, () =>
      fetch(`${s.url}/v2/models/heavy/infer`, { method: 'POST', body }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { outputs?: { shape: number[] }[] },
      })),
    );
    // SIGTERM once the instance holds two batches (one running) and two more wait in the queue.
    for (let depth = 0; depth < 2;) {
      await new Promise((r) => setTimeout(r, 5));
      const text = await (await fetch(`${s.url}/metrics`)).text();
      depth = Number(/runway_server_queue_depth\{[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    }
    const code = await s.stop('SIGTERM');
    const answers = await Promise.all(inflight);
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body.outputs![0]!.shape).toEqual([1024, 1]);
    }
    expect(code).toBe(0);
    expect(s.stderr()).toMatch(/draining/);
    await expect(fetch(`${s.url}/v2/health/live`)).rejects.toThrow();
  });

  it('exits non-zero naming the file and the cause on startup failures', async () => {
    const missing = path.join(tmp, 'nope.onnx');
    const garbage = path.join(tmp, 'garbage.onnx');
    fs.writeFileSync(garbage, 'this is not a protobuf');
    const empty = path.join(tmp, 'empty.onnx');
    fs.writeFileSync(empty, '');
    const readme = path.join(projectRoot, 'README.md');
    const [m, g, e, r, sha, flag] = await Promise.all([
      serveFailure(['--model', missing, '--name', 'x']),
      serveFailure(['--model', garbage, '--name', 'x']),
      serveFailure(['--model', empty, '--name', 'x']),
      serveFailure(['--model', readme, '--name', 'x']),
      serveFailure(['--model', FRAUD, '--name', 'x', '--sha256', '0'.repeat(64)]),
      serveFailure(['--model', FRAUD, '--name', 'x', '--max-batch-size', '0']),
    ]);
    // 3: the artifact is refused as given (a fleet does not retry); 1: anything else
    expect(m.code).toBe(3);
    expect(m.stderr).toContain(`${missing}: no such file`);
    // bytes that are not an ONNX model are refused as an artifact too, as the README says
    for (const [res, file] of [
      [g, garbage],
      [e, empty],
      [r, readme],
    ] as const) {
      expect(res.code, res.stderr).toBe(3);
      expect(res.stderr).toContain(`${file}: not a loadable ONNX model (`);
    }
    expect(sha.code).toBe(3);
    expect(sha.stderr).toMatch(
      new RegExp(`${FRAUD.replace(/[.]/g, '\\.')}: sha256 is [0-9a-f]{64}, expected 0{64}`),
    );
    expect(flag.code).toBe(1);
    expect(flag.stderr).toMatch(/--max-batch-size/);
  });

  it('falls back to CPU with one log line when CUDA cannot load, and says so', async () => {
    const digest = (await run('sha256sum', [FRAUD])).stdout.split(' ')[0]!;
    const s = await serve([
      '--model',
      FRAUD,
      '--name',
      'fraud',
      '--device',
      'cuda',
      '--sha256',
      digest,
      '--instances',
      '2',
    ]);
    const meta = (await (await fetch(`${s.url}/v2/models/fraud`)).json()) as {
      parameters: { execution_provider: string };
    };
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    let cudaAvailable = false;
    try {
      await ort.InferenceSession.create(FRAUD, { executionProviders: ['cuda'], logSeverityLevel: 4 });
      cudaAvailable = true;
    } catch {
      // expected on CPU-only hosts
    }
    const provider = cudaAvailable ? 'cuda' : 'cpu';
    expect(meta.parameters.execution_provider).toBe(provider);
    expect(metrics).toContain(
      `runway_server_execution_provider{model="fraud",version="1",provider="${provider}"} 1`,
    );
    const fallbackLines = s
      .stderr()
      .split('\n')
      .filter((l) => /falling back to CPU/.test(l));
    expect(fallbackLines).toHaveLength(cudaAvailable ? 0 : 1);
    expect(await s.stop()).toBe(0);
  });

  it("--spin-wait on or off: onnxruntime's own scores either way, and the ready log names the setting", async () => {
    const rows = Array.from({ length: 4 * 8 }, (_, i) => Math.fround(Math.cos(i)));
    const session = await ort.InferenceSession.create(HEAVY);
    const expected = (
      await session.run({ features: new ort.Tensor('float32', Float32Array.from(rows), [4, 8]) })
    )[session.outputNames[0]!]!.data as Float32Array;
    for (const spin of [false, true]) {
      const s = await serve([
        '--model',
        HEAVY,
        '--name',
        'heavy',
        '--threads',
        '2',
        ...(spin ? ['--spin-wait'] : []),
      ]);
      const res = await fetch(`${s.url}/v2/models/heavy/infer`, {
        method: 'POST',
        body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [4, 8], data: rows }] }),
      });
      expect(res.status).toBe(200);
      const out = ((await res.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data;
      expect(out).toHaveLength(expected.length);
      out.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
      expect(s.stderr()).toMatch(new RegExp(`model ready.*spinWait=${spin}`));
      expect(await s.stop()).toBe(0);
    }
  });

  it("works with Triton's Python client (tritonclient[http]), JSON and binary", async () => {
    if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run \`bash scripts/tools.sh python\``);
    const s = await serve(['--model', FRAUD, '--name', 'fraud']);
    const { stdout } = await run(
      PYTHON,
      [path.join(projectRoot, 'test/python/oip_client.py'), new URL(s.url).host, 'fraud'],
      {
        timeout: 60_000,
      },
    );
    const report = JSON.parse(stdout) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the script's JSON report
    expect(report.live).toBe(true);
    expect(report.ready).toBe(true);
    expect(report.model_ready).toBe(true);
    expect(report.server_metadata.extensions).toContain('binary_tensor_data');
    expect(report.model_metadata.inputs[0]).toEqual({ name: 'features', datatype: 'FP32', shape: [-1, 8] });
    const session = await ort.InferenceSession.create(FRAUD);
    const rows = report.rows as number[][];
    const out = await session.run({
      features: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 8]),
    });
    const want = Array.from(out.score!.data as Float32Array);
    for (const key of ['json', 'binary']) {
      expect(report[key].id).toBe(`py-${key === 'binary' ? 'True' : 'False'}`);
      const got = (report[key].score as number[][]).flat();
      got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    }
    expect(report.bad_request.status).toBe('400');
    expect(report.bad_request.message).toMatch(/shape \[1, 3\]/);
    expect(report.stats.model_stats[0].inference_stats.success.count).toBeGreaterThanOrEqual(2);
    expect(await s.stop()).toBe(0);
  });
});

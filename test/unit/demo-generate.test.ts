/**
 * The demo family keeps its promises, checked through real onnxruntime-node on generated files:
 * byte-for-byte determinism, the accuracy ordering, v4's slowness, v5's run-time fault, heavy's
 * batching gain, reproducible golden sets and a dynamic batch dimension everywhere.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accuracy, createRowSampler, fraudScore, sampleDataset, trueLabel } from '../../demo/dataset';
import { generate, v5Fails, type Manifest } from '../../demo/generate';
import { V5_FAULT } from '../../demo/fraud-family';
import { IMAGE_MODEL, IMAGE_MODELS, IMAGE_RESNET, multiplyAdds } from '../../demo/image-model';
import { onnx } from 'onnx-proto';
import { createSession, featureTensor, measureThroughput } from '../../demo/timing';

let dirA: string;
let dirB: string;
let manifest: Manifest;
const sessions = new Map<string, InferenceSession>();

async function session(file: string): Promise<InferenceSession> {
  let s = sessions.get(file);
  if (!s) {
    s = await createSession(path.join(dirA, file));
    sessions.set(file, s);
  }
  return s;
}

async function scores(file: string, rows: number[][]): Promise<number[]> {
  const out = await (await session(file)).run({ features: featureTensor(rows) });
  return Array.from(out.score!.data as Float32Array);
}

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(path.join(dirA, file), 'utf8')) as T;

beforeAll(async () => {
  dirA = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-demo-a-'));
  dirB = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-demo-b-'));
  manifest = await generate(dirA, { measure: false });
  await generate(dirB, { measure: false });
});

afterAll(async () => {
  await Promise.all([...sessions.values()].map((s) => s.release()));
  for (const d of [dirA, dirB]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('dataset', () => {
  it('samples the same rows for the same seed and labels them by the rule', () => {
    const a = sampleDataset(500, 42);
    expect(sampleDataset(500, 42)).toEqual(a);
    expect(sampleDataset(500, 43)).not.toEqual(a);
    a.features.forEach((row, i) => expect(a.labels[i]).toBe(trueLabel(row)));
    const rate = a.labels.reduce((x, y) => x + y, 0) / a.labels.length;
    expect(rate).toBeGreaterThan(0.1);
    expect(rate).toBeLessThan(0.35);
  });

  it('rejects rows of the wrong width', () => {
    expect(() => fraudScore([1, 2, 3])).toThrow(/expected 8 values, got 3/);
  });

  it('streams rows from a seeded sampler', () => {
    const s1 = createRowSampler(9);
    const s2 = createRowSampler(9);
    for (let i = 0; i < 50; i++) expect(s1()).toEqual(s2());
  });
});

describe('generated demo models', () => {
  it('are byte-for-byte deterministic', () => {
    const files = fs.readdirSync(dirA).sort();
    expect(fs.readdirSync(dirB).sort()).toEqual(files);
    expect(files).toEqual(
      expect.arrayContaining([
        'fraud-v1.onnx',
        'fraud-v5.onnx',
        'heavy.onnx',
        'eval.json',
        'golden-v4.json',
        'manifest.json',
      ]),
    );
    for (const f of files)
      expect(fs.readFileSync(path.join(dirB, f)).equals(fs.readFileSync(path.join(dirA, f))), f).toBe(true);
  });

  it('declare a dynamic batch dimension on every input and output', async () => {
    for (const m of manifest.models) {
      const s = await session(m.file);
      expect(s.inputMetadata, m.file).toEqual([
        { name: 'features', isTensor: true, type: 'float32', shape: ['batch', 8] },
      ]);
      expect(s.outputMetadata, m.file).toEqual([
        { name: 'score', isTensor: true, type: 'float32', shape: ['batch', 1] },
      ]);
    }
  });

  it('order by accuracy on eval.json: v2 > v1 = v4 > v3, as the manifest says', async () => {
    const evalSet = readJson<{ features: number[][]; labels: number[] }>('eval.json');
    expect(evalSet.features).toHaveLength(2000);
    const acc: Record<string, number> = {};
    for (const v of ['v1', 'v2', 'v3', 'v4']) {
      acc[v] = accuracy(await scores(`fraud-${v}.onnx`, evalSet.features), evalSet.labels);
      expect(manifest.models.find((m) => m.name === `fraud-${v}`)!.accuracy).toBe(acc[v]);
    }
    expect(acc.v2).toBeGreaterThanOrEqual(0.93);
    expect(acc.v1).toBeGreaterThan(0.8);
    expect(acc.v1).toBeLessThan(0.9);
    expect(acc.v3).toBeLessThan(0.75);
    expect(acc.v2).toBeGreaterThan(acc.v1! + 0.05);
    expect(acc.v1).toBeGreaterThan(acc.v3! + 0.1);
    // v4 and heavy carry v1's answers exactly.
    const v1 = await scores('fraud-v1.onnx', evalSet.features);
    expect(await scores('fraud-v4.onnx', evalSet.features)).toEqual(v1);
    expect(await scores('heavy.onnx', evalSet.features.slice(0, 256))).toEqual(v1.slice(0, 256));
  });

  it('lists every file with its sha256 in the manifest', async () => {
    const { createHash } = await import('node:crypto');
    expect(manifest.models.map((m) => m.name)).toEqual([
      'fraud-v1',
      'fraud-v2',
      'fraud-v3',
      'fraud-v4',
      'fraud-v5',
      'heavy',
    ]);
    for (const m of manifest.models) {
      const bytes = fs.readFileSync(path.join(dirA, m.file));
      expect(createHash('sha256').update(bytes).digest('hex'), m.file).toBe(m.sha256);
      expect(m.description.length).toBeGreaterThan(10);
    }
  });

  it('v5 throws on rows past its fault threshold and matches v1 elsewhere', async () => {
    const rows = sampleDataset(400, 77).features;
    const bad = rows.filter(v5Fails);
    const good = rows.filter((r) => !v5Fails(r));
    expect(bad.length).toBeGreaterThan(5);
    await expect(scores('fraud-v5.onnx', [good[0]!, bad[0]!])).rejects.toThrow(/out of|bounds|index/i);
    await expect(scores('fraud-v5.onnx', [bad[1]!])).rejects.toThrow();
    expect(await scores('fraud-v5.onnx', good)).toEqual(await scores('fraud-v1.onnx', good));
    // Just under the threshold still works.
    const edge = [...good[0]!];
    edge[V5_FAULT.feature] = V5_FAULT.threshold - 0.01;
    expect(await scores('fraud-v5.onnx', [edge])).toHaveLength(1);
    expect(manifest.models.find((m) => m.name === 'fraud-v5')!.failureRate).toBeGreaterThan(0.02);
  });

  it('golden sets reproduce through onnxruntime', async () => {
    for (const v of ['v1', 'v2', 'v3', 'v4', 'v5']) {
      const golden = readJson<{ inputs: number[][]; expected: number[][] }>(`golden-${v}.json`);
      expect(golden.inputs.length, v).toBeGreaterThanOrEqual(25);
      expect(golden.expected).toHaveLength(golden.inputs.length);
      const got = await scores(`fraud-${v}.onnx`, golden.inputs);
      got.forEach((s, i) => expect(s).toBeCloseTo(golden.expected[i]![0]!, 6));
    }
    const v1 = readJson<{ expected: number[][] }>('golden-v1.json').expected;
    const v2 = readJson<{ expected: number[][] }>('golden-v2.json').expected;
    expect(v2).not.toEqual(v1);
  });

  it('v4 is at least 10x slower per row than v1 at batch 1', async () => {
    const v1 = await measureThroughput(await session('fraud-v1.onnx'), 1, 200);
    const v4 = await measureThroughput(await session('fraud-v4.onnx'), 1, 400);
    const slowdown = v1.rowsPerSecond / v4.rowsPerSecond;
    console.log(
      `v1 ${v1.msPerRun.toFixed(4)} ms/row, v4 ${v4.msPerRun.toFixed(4)} ms/row: ${slowdown.toFixed(1)}x`,
    );
    expect(slowdown).toBeGreaterThanOrEqual(10);
  });

  it('heavy gains from batching: batch 64 runs several times more rows/s than batch 1', async () => {
    const s = await session('heavy.onnx');
    const one = await measureThroughput(s, 1, 400);
    const many = await measureThroughput(s, 64, 400);
    console.log(
      `heavy: ${one.msPerRun.toFixed(3)} ms/row at batch 1, ${Math.round(many.rowsPerSecond)} rows/s at 64`,
    );
    expect(many.rowsPerSecond / one.rowsPerSecond).toBeGreaterThan(3);
    // Weight-heavy: a row at batch 1 costs far more than the fraud models' microseconds.
    expect(one.msPerRun).toBeGreaterThan(0.2);
  });

  it.each(IMAGE_MODELS.map((m) => [m.name, m] as const))(
    'the image classifier %s takes a 3x48x192 image per row and answers ten probabilities',
    async (_, model) => {
      const s = await session(model.file);
      expect(s.inputMetadata).toEqual([
        { name: 'image', isTensor: true, type: 'float32', shape: ['batch', 3, 48, 192] },
      ]);
      expect(s.outputMetadata).toEqual([
        { name: 'probabilities', isTensor: true, type: 'float32', shape: ['batch', 10] },
      ]);
      const n = 2 * 3 * 48 * 192;
      const x = new Tensor(
        'float32',
        Float32Array.from({ length: n }, (_, i) => Math.sin(i)),
        [2, 3, 48, 192],
      );
      const p = (await s.run({ image: x })).probabilities!.data as Float32Array;
      for (const row of [p.slice(0, 10), p.slice(10, 20)]) {
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        expect(Math.max(...row)).toBeLessThan(1); // weights give a spread, not a constant answer
      }
    },
  );

  it('the image classifiers are the size their doc comment states: convolutions as listed, 11 M and 119 M multiply-adds', () => {
    for (const model of IMAGE_MODELS) {
      const graph = onnx.ModelProto.decode(fs.readFileSync(path.join(dirA, model.file))).graph!;
      const weights = new Map(graph.initializer!.map((t) => [t.name!, t.dims!.map(Number)]));
      const convs = graph.node!.filter((n) => n.opType === 'Conv');
      // Each Conv's weight is [out, in, 3, 3], in the order of the layer list, strides as listed.
      expect(convs.map((c) => weights.get(c.input![1]!))).toEqual(
        model.layers.map((l, i) => [l.channels, i === 0 ? 3 : model.layers[i - 1]!.channels, 3, 3]),
      );
      expect(convs.map((c) => c.attribute!.find((a) => a.name === 'strides')!.ints!.map(Number))).toEqual(
        model.layers.map((l) => [l.stride, l.stride]),
      );
      expect(graph.node!.filter((n) => n.opType === 'Add').length).toBe(
        model.layers.filter((l) => l.residual).length,
      );
    }
    // The counts in demo/image-model.ts's doc comment, and the brief's CNN-sized range.
    expect(multiplyAdds(IMAGE_MODEL)).toBe(11_446_912);
    expect(multiplyAdds(IMAGE_RESNET)).toBe(118_778_368);
    expect(multiplyAdds(IMAGE_RESNET)).toBeGreaterThan(80e6);
    expect(multiplyAdds(IMAGE_RESNET)).toBeLessThan(150e6);
  });
});

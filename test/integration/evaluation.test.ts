/**
 * Offline evaluation on real onnxruntime with the demo models: several gates with the paired
 * bootstrap on the binary fraud family, the regression pair (risk-v1/v2) on a CSV with a slice
 * column, bad datasets named by file, row and column, and a promotion rejected at evaluate by a
 * bad dataset with nothing deployed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluationActivities, type GateResult } from '../../activities/evaluation';
import type { ActivityDeps } from '../../activities/deps';
import { createLogger } from '../../common/log';
import { loadSpecFile, parseSpec } from '../../specs/load';
import { projectRoot } from '../../common/paths';
import type { ModelSpec } from '../../specs/schema';
import { fitFamily } from '../../demo/fraud-family';
import { GraphBuilder } from '../../demo/onnx-builder';
import { MODELS_DIR, settledOutcome, testSpec, usePromotionPlatform } from '../helpers/promotion';

const platform = usePromotionPlatform();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-eval-int-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const act = evaluationActivities({ logger: createLogger('test') } as unknown as ActivityDeps);
const ref = (name: string, version: string) => ({
  version,
  sha256: '',
  artifactPath: path.join(MODELS_DIR, `${name}.onnx`),
});
const evaluation = (e: Record<string, unknown>): ModelSpec['evaluation'] =>
  parseSpec(
    {
      name: 'm',
      owner: 't',
      model: {
        signature: {
          inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
          outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
        },
      },
      slos: { p99LatencyMs: 100, errorRate: 0.01 },
      evaluation: e,
    },
    'spec',
  ).evaluation;
const write = (name: string, text: string): string => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
};

describe('offline evaluation', () => {
  const binary = evaluation({
    dataset: path.join(MODELS_DIR, 'eval.json'),
    metrics: [
      { metric: 'auc', min: 0.8, maxRegression: 0.01 },
      { metric: 'f1', min: 0.5, maxRegression: 0.02 },
      { metric: 'logloss', max: 0.6, maxRegression: 0.02 },
    ],
  });

  it(
    'judges every binary metric as a gate: the better model passes, the worse fails each with its numbers',
    { timeout: 60_000 },
    async () => {
      const good = await act.evaluate({
        model: 'm',
        candidate: ref('fraud-v2', '2'),
        baseline: ref('fraud-v1', '1'),
        evaluation: binary,
      });
      expect(good.result, good.reason).toBe('pass');
      expect((good.gates as GateResult[]).map((g) => [g.metric, g.result])).toEqual([
        ['auc', 'pass'],
        ['f1', 'pass'],
        ['logloss', 'pass'],
      ]);
      const bad = await act.evaluate({
        model: 'm',
        candidate: ref('fraud-v3', '3'),
        baseline: ref('fraud-v1', '1'),
        evaluation: binary,
      });
      expect(bad.result).toBe('fail');
      const gates = bad.gates as GateResult[];
      expect(gates.every((g) => g.result === 'fail' && g.bootstrap?.real === true)).toBe(true);
      expect(bad.reason).toMatch(/auc 0\.\d+ is below the minimum 0\.8/);
      expect(bad.reason).toMatch(
        /f1 .* worse than production v1 .* a real regression \(paired bootstrap, 1000 resamples/,
      );
    },
  );

  it('judges the regression pair on a CSV, overall and per region', { timeout: 60_000 }, async () => {
    const e = evaluation({
      dataset: path.join(MODELS_DIR, 'risk-eval.csv'),
      task: 'regression',
      label: 'risk',
      inputs: { features: ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7'] },
      metrics: [
        { metric: 'rmse', max: 2, maxRegression: 0.05 },
        { metric: 'mae', maxRegression: 0.05 },
        { metric: 'r2', min: 0.5, maxRegression: 0.02 },
      ],
      slices: { column: 'region', minRows: 100 },
    });
    const better = await act.evaluate({
      model: 'm',
      candidate: ref('risk-v2', '2'),
      baseline: ref('risk-v1', '1'),
      evaluation: e,
    });
    expect(better.result, better.reason).toBe('pass');
    const gates = better.gates as GateResult[];
    expect(gates.find((g) => g.metric === 'rmse')!.candidate!).toBeLessThan(0.01);
    expect(gates.find((g) => g.metric === 'r2')!.candidate!).toBeGreaterThan(0.99);
    const slices = better.slices as GateResult[];
    expect(slices.map((s) => `${s.slice!.value}:${s.metric}`)).toEqual(
      ['east', 'north', 'south', 'west'].flatMap((r) => [`${r}:rmse`, `${r}:mae`, `${r}:r2`]),
    );
    expect(slices.every((s) => s.rows === 500 && s.result === 'pass')).toBe(true);
    // the other way round: the linear model regresses everywhere, and every region says so
    const worse = await act.evaluate({
      model: 'm',
      candidate: ref('risk-v1', '3'),
      baseline: ref('risk-v2', '2'),
      evaluation: e,
    });
    expect(worse.result).toBe('fail');
    expect((worse.slices as GateResult[]).filter((s) => s.result === 'fail')).toHaveLength(12);
    expect(worse.reason).toMatch(/region=east: rmse .* worse than production v2/);
  });

  it(
    'the example regression spec, as a user writes it, passes risk-v2 over risk-v1',
    { timeout: 60_000 },
    async () => {
      const { spec } = loadSpecFile(path.join(projectRoot, 'specs', 'examples', 'risk-scorer.yaml'));
      const v = await act.evaluate({
        model: spec.name,
        candidate: ref('risk-v2', '2'),
        baseline: ref('risk-v1', '1'),
        evaluation: spec.evaluation,
      });
      expect(v.result, v.reason).toBe('pass');
      expect(v).toMatchObject({ task: 'regression', metric: 'rmse', rows: 2000 });
      expect(v.reason).toMatch(
        /^rmse 0\.\d+ vs production 1\.\d+, mae .*, r2 .* on 2000 rows; 12 slice gates passed, 0 too small$/,
      );
    },
  );

  it('feeds a multi-input model its own columns, from a CSV', { timeout: 60_000 }, async () => {
    // fraud-v1's logistic regression, split over two inputs: the same answers if and only if
    // each input gets its columns in order
    const v1 = fitFamily().v1;
    const g = new GraphBuilder();
    const joined = g.op('Concat', ['card', 'merchant'], { axis: 1 });
    const w = g.floats('w', [8, 1], v1.weights);
    const logit = g.op('Add', [g.op('MatMul', [joined, w]), g.floats('b', [1], [v1.bias])]);
    g.op('Sigmoid', [logit], {}, 'score');
    const file = path.join(tmp, 'two-inputs.onnx');
    fs.writeFileSync(
      file,
      g.build({
        graphName: 'two',
        docString: 'fraud-v1 over two inputs',
        inputs: [
          { name: 'card', width: 5 },
          { name: 'merchant', width: 3 },
        ],
        outputs: [{ name: 'score', width: 1 }],
      }),
    );
    const data = JSON.parse(fs.readFileSync(path.join(MODELS_DIR, 'eval.json'), 'utf8')) as {
      features: number[][];
      labels: number[];
    };
    const header = 'm0,c0,c1,label,c2,m1,c3,c4,m2';
    // columns shuffled on purpose: the mapping, not the order in the file, decides
    const csv = write(
      'two-inputs.csv',
      [
        header,
        ...data.features.map((f, i) =>
          [f[5], f[0], f[1], data.labels[i], f[2], f[6], f[3], f[4], f[7]].join(','),
        ),
      ].join('\n') + '\n',
    );
    const e = evaluation({
      dataset: csv,
      inputs: { card: ['c0', 'c1', 'c2', 'c3', 'c4'], merchant: ['m0', 'm1', 'm2'] },
      metrics: [
        { metric: 'accuracy', min: 0.8 },
        { metric: 'auc', min: 0.8 },
      ],
    });
    const split = await act.evaluate({
      model: 'm',
      candidate: { version: '9', sha256: '', artifactPath: file },
      evaluation: e,
    });
    const whole = await act.evaluate({ model: 'm', candidate: ref('fraud-v1', '1'), evaluation: binary });
    expect(split.result, split.reason).toBe('pass');
    // fraud-v1's accuracy as the demo generator measured it, and its AUC on the JSON form
    const manifest = JSON.parse(fs.readFileSync(path.join(MODELS_DIR, 'manifest.json'), 'utf8')) as {
      models: { name: string; accuracy: number }[];
    };
    expect((split.gates as GateResult[]).map((x) => x.candidate)).toEqual([
      manifest.models.find((m) => m.name === 'fraud-v1')!.accuracy,
      (whole.gates as GateResult[])[0]!.candidate,
    ]);
  });

  it(
    'rejects a dataset that does not fit, naming the file, row and column',
    { timeout: 60_000 },
    async () => {
      const run = async (file: string, extra: Record<string, unknown> = {}) =>
        act.evaluate({
          model: 'm',
          candidate: ref('fraud-v2', '2'),
          baseline: ref('fraud-v1', '1'),
          evaluation: evaluation({ dataset: file, min: 0.5, ...extra }),
        });
      const cols = Array.from({ length: 8 }, (_, i) => `f${i}`).join(',');
      const row = '0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8';
      const outOfRange = write('range.csv', `${cols},label\n${row},1\n${row},2\n`);
      expect(await run(outOfRange)).toMatchObject({
        result: 'fail',
        reason: `evaluation dataset ${outOfRange} row 2, column label: 2 is not 0 or 1 (task binary)`,
      });
      const narrow = write('narrow.csv', `f0,f1,f2,f3,f4,f5,f6,label\n0.1,0.2,0.3,0.4,0.5,0.6,0.7,1\n`);
      expect((await run(narrow)).reason).toBe(
        `evaluation dataset ${narrow}: input "features" has 7 columns, the model's input takes 8 (shape [batch,8])`,
      );
      const ragged = write('ragged.csv', `${cols},label\n${row},1\n${row}\n`);
      expect((await run(ragged)).reason).toContain(`${ragged} row 2 (line 3): 8 values, expected 9`);
      expect((await run(path.join(tmp, 'absent.csv'))).reason).toMatch(
        /absent\.csv: cannot read it \(ENOENT\)/,
      );
      expect((await run(outOfRange, { inputs: { pixels: ['f0'] } })).reason).toContain(
        'model input "features" gets no data',
      );
    },
  );

  it(
    'a promotion whose dataset is bad is rejected at evaluate, and nothing deploys',
    { timeout: 180_000 },
    async () => {
      const model = 'fd-eval-bad-data';
      const ragged = write('promo.csv', 'f0,f1,f2,f3,f4,f5,f6,f7,label\n1,2,3,4,5,6,7,8,1\n1,2,3\n');
      const spec = testSpec(model, { evaluation: { dataset: ragged, min: 0.5 } });
      await platform.bootstrap(model, spec, { serve: false });
      await platform.start(spec, '2');
      const outcome = await settledOutcome(platform, model);
      expect(outcome).toBe(
        `rejected: evaluation failed: evaluation dataset ${ragged} row 2 (line 3): 3 values, expected 9 (the header's columns)`,
      );
      expect(await platform.deps.fleet.list({ model })).toEqual([]);
      expect((await platform.deps.registry.get(model, '2'))?.status).toBe('rejected');
    },
  );
});

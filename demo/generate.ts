/**
 * Writes the demo models and datasets (`npm run demo:models`, after a build):
 *   node dist/demo/generate.js [--out DIR] [--no-measure]
 * Deterministic (seeded, no clocks in the output), offline, a few seconds. The expected outputs
 * of the golden sets and the accuracies in manifest.json come from running each model in
 * onnxruntime-node, so they describe the artifacts as served. Timings are printed, never written.
 */
import { buildImageModel, IMAGE_MODELS } from './image-model';
import fs from 'node:fs';
import path from 'node:path';
import { sha256Hex } from '../common/digest';
import { createLogger } from '../common/log';
import { projectRoot } from '../common/paths';
import { accuracy, FEATURE_COUNT, sampleDataset, SEEDS, type Dataset } from './dataset';
import {
  buildModel,
  DESCRIPTIONS,
  fitFamily,
  INPUT_NAME,
  MEMBERS,
  OUTPUT_NAME,
  V5_FAULT,
  type FamilyMember,
} from './fraud-family';
import {
  buildRiskModel,
  fitRisk,
  RISK_DESCRIPTIONS,
  RISK_MEMBERS,
  riskCsv,
  type RiskMember,
} from './risk-family';
import { createSession, featureTensor, measureThroughput } from './timing';
import type { InferenceSession } from 'onnxruntime-node';

const log = createLogger('demo');

export const DEFAULT_OUT = path.join(projectRoot, 'demo', 'models');
const EVAL_ROWS = 2000;
const GOLDEN_ROWS = 32;
/** Versions that get a golden set. v5's holds only rows it can score: it passes staging's golden
 * test and fails on live traffic, which is the failure the canary must catch. */
const GOLDEN_MEMBERS: FamilyMember[] = ['fraud-v1', 'fraud-v2', 'fraud-v3', 'fraud-v4', 'fraud-v5'];

export interface ManifestEntry {
  name: FamilyMember;
  file: string;
  sha256: string;
  bytes: number;
  description: string;
  /** Accuracy on eval.json over the rows the model can score. */
  accuracy: number;
  /** Fraction of eval.json rows on which the model's run fails (v5 only; 0 otherwise). */
  failureRate: number;
  golden?: string;
}

export interface Manifest {
  input: { name: string; datatype: 'FP32'; shape: [-1, number] };
  output: { name: string; datatype: 'FP32'; shape: [-1, 1] };
  eval: { file: string; rows: number; positiveRate: number };
  models: ManifestEntry[];
  /** The regression pair (demo/risk-family.ts) and its CSV evaluation set. */
  regression: {
    eval: string;
    models: { name: RiskMember; file: string; sha256: string; description: string }[];
  };
}

export const v5Fails = (row: readonly number[]): boolean => row[V5_FAULT.feature]! > V5_FAULT.threshold;

async function score(session: InferenceSession, rows: number[][]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < rows.length; i += 256) {
    const result = await session.run({ [INPUT_NAME]: featureTensor(rows.slice(i, i + 256)) });
    out.push(...(result[OUTPUT_NAME]!.data as Float32Array));
  }
  return out;
}

const json = (value: unknown): string => JSON.stringify(value) + '\n';

export async function generate(outDir: string, opts: { measure?: boolean } = {}): Promise<Manifest> {
  fs.mkdirSync(outDir, { recursive: true });
  const fitted = fitFamily();
  const evalSet: Dataset = sampleDataset(EVAL_ROWS, SEEDS.eval);
  const golden = sampleDataset(GOLDEN_ROWS, SEEDS.golden).features;
  fs.writeFileSync(path.join(outDir, 'eval.json'), json(evalSet));

  const models: ManifestEntry[] = [];
  const sessions = new Map<FamilyMember, InferenceSession>();
  for (const name of MEMBERS) {
    const bytes = buildModel(name, fitted);
    const file = `${name}.onnx`;
    fs.writeFileSync(path.join(outDir, file), bytes);
    const session = await createSession(bytes);
    sessions.set(name, session);

    const usable = evalSet.features.map((row) => name !== 'fraud-v5' || !v5Fails(row));
    const rows = evalSet.features.filter((_, i) => usable[i]);
    const labels = evalSet.labels.filter((_, i) => usable[i]);
    const entry: ManifestEntry = {
      name,
      file,
      sha256: sha256Hex(bytes),
      bytes: bytes.byteLength,
      description: DESCRIPTIONS[name],
      accuracy: accuracy(await score(session, rows), labels),
      failureRate: (evalSet.features.length - rows.length) / evalSet.features.length,
    };
    if (GOLDEN_MEMBERS.includes(name)) {
      const inputs = golden.filter((row) => name !== 'fraud-v5' || !v5Fails(row));
      const expected = (await score(session, inputs)).map((s) => [s]);
      entry.golden = `golden-${name.replace('fraud-', '')}.json`;
      fs.writeFileSync(path.join(outDir, entry.golden), json({ inputs, expected }));
    }
    models.push(entry);
  }

  const riskWeights = fitRisk(sampleDataset(4000, SEEDS.train));
  fs.writeFileSync(path.join(outDir, 'risk-eval.csv'), riskCsv(evalSet));
  const regression: Manifest['regression'] = { eval: 'risk-eval.csv', models: [] };
  for (const name of RISK_MEMBERS) {
    const bytes = buildRiskModel(name, riskWeights[name]);
    fs.writeFileSync(path.join(outDir, `${name}.onnx`), bytes);
    regression.models.push({
      name,
      file: `${name}.onnx`,
      sha256: sha256Hex(bytes),
      description: RISK_DESCRIPTIONS[name],
    });
  }

  const manifest: Manifest = {
    input: { name: INPUT_NAME, datatype: 'FP32', shape: [-1, FEATURE_COUNT] },
    output: { name: OUTPUT_NAME, datatype: 'FP32', shape: [-1, 1] },
    eval: {
      file: 'eval.json',
      rows: EVAL_ROWS,
      positiveRate: evalSet.labels.reduce((a, b) => a + b, 0) / EVAL_ROWS,
    },
    models,
    regression,
  };
  fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  // Not part of the fraud family (another signature): the large-tensor benchmark's models.
  for (const image of IMAGE_MODELS) fs.writeFileSync(path.join(outDir, image.file), buildImageModel(image));
  for (const m of models) {
    log.info('model written', {
      file: m.file,
      accuracy: m.accuracy,
      failureRate: m.failureRate,
      bytes: m.bytes,
    });
  }

  if (opts.measure !== false) await printTimings(sessions);
  await Promise.all([...sessions.values()].map((s) => s.release()));
  return manifest;
}

/** Checks the family's performance promises on this machine and prints them (not written: clocks). */
async function printTimings(sessions: Map<FamilyMember, InferenceSession>): Promise<void> {
  const v1 = await measureThroughput(sessions.get('fraud-v1')!, 1, 150);
  const v4 = await measureThroughput(sessions.get('fraud-v4')!, 1, 300);
  const heavy1 = await measureThroughput(sessions.get('heavy')!, 1, 400);
  const heavy64 = await measureThroughput(sessions.get('heavy')!, 64, 400);
  log.info('timing (one thread)', {
    v1MsPerRow: +v1.msPerRun.toFixed(4),
    v4MsPerRow: +v4.msPerRun.toFixed(4),
    v4Slowdown: +(v1.rowsPerSecond / v4.rowsPerSecond).toFixed(1),
    heavyMsPerRowBatch1: +heavy1.msPerRun.toFixed(3),
    heavyRowsPerSecBatch1: Math.round(heavy1.rowsPerSecond),
    heavyRowsPerSecBatch64: Math.round(heavy64.rowsPerSecond),
    heavyBatchGain: +(heavy64.rowsPerSecond / heavy1.rowsPerSecond).toFixed(2),
  });
}

function parseArgs(argv: string[]): { out: string; measure: boolean } {
  let out = DEFAULT_OUT;
  let measure = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--out') {
      const value = argv[++i];
      if (!value) throw new Error('--out: expected a directory');
      out = path.resolve(value);
    } else if (arg === '--no-measure') {
      measure = false;
    } else {
      throw new Error(`unknown argument ${JSON.stringify(arg)} (usage: generate [--out DIR] [--no-measure])`);
    }
  }
  return { out, measure };
}

if (require.main === module) {
  (async () => {
    const { out, measure } = parseArgs(process.argv.slice(2));
    const started = Date.now();
    await generate(out, { measure });
    log.info('demo models ready', { out, ms: Date.now() - started });
  })().catch((err: unknown) => {
    log.error('demo model generation failed', { error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  });
}

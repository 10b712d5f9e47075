import { describe, expect, it } from 'vitest';
import { fromHalf, toHalf } from '../../serving/server/datatypes';
import { InferenceError } from '../../serving/server/errors';
import { parseInferRequest } from '../../serving/server/request';
import { encodeInferResponse } from '../../serving/server/response';
import type { Signature } from '../../serving/server/signature';

const sig: Signature = {
  inputs: [
    { name: 'features', datatype: 'FP32', shape: [-1, 3] },
    { name: 'ids', datatype: 'INT64', shape: [-1] },
  ],
  outputs: [
    { name: 'score', datatype: 'FP32', shape: [-1, 1] },
    { name: 'label', datatype: 'BOOL', shape: [-1] },
  ],
  batched: true,
};
const limits = { maxBatchSize: 8 };
const json = (body: unknown): Buffer => Buffer.from(JSON.stringify(body));
const good = {
  id: 'r1',
  inputs: [
    {
      name: 'features',
      datatype: 'FP32',
      shape: [2, 3],
      data: [
        [1, 2, 3],
        [4, 5, 6],
      ],
    },
    { name: 'ids', datatype: 'INT64', shape: [2], data: [7, 8] },
  ],
};

function error(body: Buffer, headerLength?: number): string {
  try {
    parseInferRequest(body, headerLength, sig, limits);
  } catch (err) {
    expect(err).toBeInstanceOf(InferenceError);
    expect((err as InferenceError).status).toBe(400);
    return (err as Error).message;
  }
  throw new Error('expected a 400');
}

describe('parseInferRequest', () => {
  it('accepts nested JSON data and keys batches by non-batch shape and outputs', () => {
    const r = parseInferRequest(json(good), undefined, sig, limits);
    expect(r.id).toBe('r1');
    expect(r.rows).toBe(2);
    expect(Array.from(r.inputs[0]!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.inputs[1]!.data).toEqual(new BigInt64Array([7n, 8n]));
    expect(r.outputs.map((o) => o.name)).toEqual(['score', 'label']);
    const onlyScore = parseInferRequest(
      json({ ...good, outputs: [{ name: 'score' }] }),
      undefined,
      sig,
      limits,
    );
    expect(onlyScore.batchKey).not.toBe(r.batchKey);
  });

  it('reads binary tensors after the JSON header', () => {
    const header = json({
      inputs: [
        { name: 'features', datatype: 'FP32', shape: [1, 3], parameters: { binary_data_size: 12 } },
        { name: 'ids', datatype: 'INT64', shape: [1], data: [3] },
      ],
      outputs: [{ name: 'score', parameters: { binary_data: true } }],
    });
    const body = Buffer.concat([header, Buffer.from(new Float32Array([0.5, 1.5, 2.5]).buffer)]);
    const r = parseInferRequest(body, header.length, sig, limits);
    expect(Array.from(r.inputs[0]!.data as Float32Array)).toEqual([0.5, 1.5, 2.5]);
    expect(r.outputs).toEqual([{ name: 'score', binary: true }]);
  });

  it('names the problem in each 400', () => {
    const with0 = (patch: object): Buffer =>
      json({ ...good, inputs: [{ ...good.inputs[0], ...patch }, good.inputs[1]] });
    expect(error(Buffer.from('{"inputs": ['))).toMatch(/malformed JSON/);
    expect(error(json({ inputs: 'x' }))).toMatch(/inputs/);
    expect(
      error(json({ inputs: [...good.inputs, { name: 'extra', datatype: 'FP32', shape: [1], data: [1] }] })),
    ).toMatch(/unknown input "extra".*features, ids/);
    expect(error(json({ inputs: [good.inputs[0]] }))).toMatch(/missing input "ids"/);
    expect(error(with0({ datatype: 'FP64' }))).toMatch(/datatype FP64 does not match the model's FP32/);
    expect(error(with0({ shape: [2, 4] }))).toMatch(/shape \[2, 4\] does not match/);
    expect(error(with0({ data: [1, 2, 3] }))).toMatch(/3 elements but shape \[2, 3\] needs 6/);
    expect(error(with0({ data: [1, 2, 3, 4, 5, 'x'] }))).toMatch(/data\[5\] is "x", expected a number/);
    expect(error(with0({ shape: [-1, 3] }))).toMatch(/shape\[0\]/);
    expect(error(json({ ...good, outputs: [{ name: 'nope' }] }))).toMatch(/unknown output "nope"/);
    expect(
      error(
        json({
          inputs: [
            { ...good.inputs[0], shape: [9, 3], data: new Array(27).fill(0) },
            { ...good.inputs[1], shape: [9], data: new Array(9).fill(0) },
          ],
        }),
      ),
    ).toMatch(/batch size 9 exceeds the model's max batch size 8/);
    expect(
      error(json({ inputs: [good.inputs[0], { ...good.inputs[1], shape: [3], data: [1, 2, 3] }] })),
    ).toMatch(/batch dimension 3 differs/);
  });

  it('rejects inconsistent binary framing', () => {
    const header = json({
      inputs: [{ ...good.inputs[0], data: undefined, parameters: { binary_data_size: 24 } }, good.inputs[1]],
    });
    const body = Buffer.concat([header, Buffer.alloc(24)]);
    expect(error(body, body.length + 1)).toMatch(
      /Inference-Header-Content-Length is \d+ but the body has only/,
    );
    expect(error(body, undefined)).toMatch(/malformed JSON|no Inference-Header-Content-Length/);
    expect(error(Buffer.concat([header, Buffer.alloc(20)]), header.length)).toMatch(/runs past the end/);
    expect(error(Buffer.concat([header, Buffer.alloc(28)]), header.length)).toMatch(
      /4 bytes of binary data that no input claims/,
    );
  });
});

describe('encodeInferResponse', () => {
  it('writes JSON and binary outputs with the header length', () => {
    const score = { type: 'float32' as const, dims: [2, 1], data: new Float32Array([0.25, 0.75]) };
    const label = { type: 'bool' as const, dims: [2], data: new Uint8Array([1, 0]) };
    const plain = encodeInferResponse('m', '1', 'x', [
      { name: 'score', tensor: score, binary: false },
      { name: 'label', tensor: label, binary: false },
    ]);
    expect(plain.headerLength).toBeUndefined();
    expect(JSON.parse(plain.body.toString()).outputs).toEqual([
      { name: 'score', datatype: 'FP32', shape: [2, 1], data: [0.25, 0.75] },
      { name: 'label', datatype: 'BOOL', shape: [2], data: [true, false] },
    ]);
    const bin = encodeInferResponse('m', '1', undefined, [{ name: 'score', tensor: score, binary: true }]);
    const header = JSON.parse(bin.body.subarray(0, bin.headerLength).toString());
    expect(header.outputs[0].parameters).toEqual({ binary_data_size: 8 });
    const floats = new Float32Array(
      bin.body.buffer.slice(bin.body.byteOffset + bin.headerLength!, bin.body.byteOffset + bin.body.length),
    );
    expect(Array.from(floats)).toEqual([0.25, 0.75]);
  });

  it('converts FP16 both ways', () => {
    for (const v of [0, 1, -2.5, 65504, 2 ** -14, 2 ** -24, 0.333251953125])
      expect(fromHalf(toHalf(v))).toBe(v);
    expect(fromHalf(toHalf(1e6))).toBe(Infinity);
  });
});

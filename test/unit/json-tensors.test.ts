/**
 * The large-tensor JSON fast path must be invisible: every FP32 element equal to what JSON.parse
 * and a Float32Array store give, every malformed array refused (so the ordinary path reports it),
 * and a whole request parsed with the fast path equal to the same request parsed without it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InferenceError } from '../../serving/server/errors';
import { scanFloat32Array, splitInferRequest } from '../../serving/server/json-tensors';
import { parseInferRequest, type ParsedRequest } from '../../serving/server/request';
import type { Signature } from '../../serving/server/signature';

/** The array's values, only when it is the whole text (trailing bytes are the caller's). */
const read = (text: string): Float32Array | undefined => {
  const buf = Buffer.from(text);
  const r = scanFloat32Array(buf, 0, buf.length);
  return r && buf.toString('utf8', r.end).trim() === '' ? r.values : undefined;
};
const reference = (text: string): Float32Array =>
  Float32Array.from((JSON.parse(text) as unknown[]).flat(Infinity) as number[]);

/** Numbers as clients print them: doubles, float32 values, integers, exponents, signs, zeros. */
const number = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.float({ noNaN: true, noDefaultInfinity: true }).map((f) => Math.fround(f)),
  fc.integer(),
  fc.double({ min: -1, max: 1, noNaN: true }).map((x) => Math.round(x * 1e4) / 1e4),
  fc.constantFrom(0, -0, 1e-45, 3.4028235e38, 3.4028236e38, 1e39, 5e-324, 0.1, 1 / 3, 16777217),
);
const printed = fc.oneof(
  number.map((x) => JSON.stringify(x)),
  number.map((x) => x.toExponential()),
  fc.tuple(number, fc.integer({ min: 1, max: 20 })).map(([x, d]) => x.toPrecision(d)),
  number.map((x) => x.toExponential().replace('e+', 'E')),
);

describe('scanFloat32Array', () => {
  it('reads every element as JSON.parse then a Float32Array store would', () => {
    fc.assert(
      fc.property(fc.array(printed, { maxLength: 40 }), fc.boolean(), (items, nested) => {
        const text = nested
          ? `[ [${items.slice(0, items.length >> 1).join(',')}] ,\n[${items.slice(items.length >> 1).join(' , ')}] ]`
          : `[${items.join(',')}]`;
        const got = read(text);
        expect(got).toBeDefined();
        expect(Array.from(got!)).toEqual(Array.from(reference(text)));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses what is not a JSON array of numbers', () => {
    for (const bad of [
      '[01]',
      '[1.]',
      '[.5]',
      '[-]',
      '[1e]',
      '[1e+]',
      '[1,]',
      '[,1]',
      '[1 2]',
      '[1,,2]',
      '[[1]',
      '[1]]',
      '[+1]',
      '[NaN]',
      '[Infinity]',
      '[0x10]',
      '[1] 2',
    ]) {
      expect(read(bad), bad).toBeUndefined();
      expect(() => JSON.parse(bad), bad).toThrow();
    }
    // Valid JSON, but not numbers: the ordinary path names the element.
    for (const other of ['["1"]', '[true]', '[null]', '[{}]']) expect(read(other), other).toBeUndefined();
    expect(Array.from(read('[]')!)).toEqual([]);
    expect(Array.from(read('[[], [1]]')!)).toEqual([1]);
  });
});

const sig: Signature = {
  inputs: [
    { name: 'image', datatype: 'FP32', shape: [-1, 3, 4, 4] },
    { name: 'ids', datatype: 'INT64', shape: [-1, 2] },
  ],
  outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 10] }],
  batched: true,
};

type Outcome = { ok: true; inputs: unknown[][]; rows: number } | { ok: false; status: number };

function outcome(body: Buffer, fast: boolean): Outcome {
  try {
    const r: ParsedRequest = parseInferRequest(body, undefined, sig, {
      maxBatchSize: 64,
      jsonFastPathMinBytes: fast ? 0 : Infinity,
    });
    return { ok: true, inputs: r.inputs.map((t) => Array.from(t.data as ArrayLike<unknown>)), rows: r.rows };
  } catch (err) {
    if (!(err instanceof InferenceError)) throw err;
    return { ok: false, status: err.status };
  }
}

describe('parseInferRequest with the fast path', () => {
  const imageRows = (rows: number): number[] =>
    Array.from({ length: rows * 48 }, (_, i) => Math.fround(Math.sin(i) * 0.5));

  it('parses a request exactly as the ordinary path does, and finds only inputs[i].data', () => {
    const body = Buffer.from(
      JSON.stringify({
        id: 'data',
        parameters: { data: [1, 2, 3] },
        inputs: [
          {
            name: 'ids',
            shape: [2, 2],
            datatype: 'INT64',
            data: [
              [1, 2],
              [3, 4],
            ],
          },
          {
            name: 'image',
            shape: [2, 3, 4, 4],
            datatype: 'FP32',
            data: imageRows(2),
            parameters: { data: [9] },
          },
        ],
        outputs: [{ name: 'probabilities' }],
      }),
    );
    const split = splitInferRequest(body, body.length, 0)!;
    expect([...split.data.keys()]).toEqual([0, 1]);
    expect(split.skeleton).toContain('"parameters":{"data":[1,2,3]}');
    expect(split.skeleton).toContain('"data":null');
    const fast = outcome(body, true);
    expect(fast).toEqual(outcome(body, false));
    expect(fast.ok).toBe(true);
  });

  it('agrees with the ordinary path on any single-byte change of a valid request', () => {
    const valid = JSON.stringify({
      inputs: [
        { name: 'image', datatype: 'FP32', shape: [1, 3, 4, 4], data: imageRows(1) },
        { name: 'ids', datatype: 'INT64', shape: [1, 2], data: [[7, 8]] },
      ],
    });
    const chars = fc.constantFrom(...'[]{},:"0123456789.-+eE ntrfu\\x'.split(''));
    fc.assert(
      fc.property(fc.nat({ max: valid.length - 1 }), chars, fc.boolean(), (at, ch, insert) => {
        const text = valid.slice(0, at) + ch + valid.slice(insert ? at : at + 1);
        const body = Buffer.from(text);
        const fast = outcome(body, true);
        const slow = outcome(body, false);
        expect(fast).toEqual(slow);
      }),
      { numRuns: 3000 },
    );
  });

  it('names the count when the data does not fill the shape', () => {
    const body = Buffer.from(
      JSON.stringify({ inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 4, 4], data: [1, 2, 3] }] }),
    );
    expect(() =>
      parseInferRequest(body, undefined, sig, { maxBatchSize: 8, jsonFastPathMinBytes: 0 }),
    ).toThrow(/input "image": data has 3 elements but shape \[1, 3, 4, 4\] needs 48/);
  });
});

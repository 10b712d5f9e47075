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
/** The next float32 above a positive finite one. */
function nextUp32(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0]!++;
  return f[0]!;
}
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

  /** Bit patterns, so -0 and 0 differ and NaN cannot hide a mismatch. */
  const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

  it('is bit-identical to JSON.parse on 200 000 random float32 values however they are printed', () => {
    // A seeded xorshift: every finite float32 bit pattern is as likely, subnormals and -0 included.
    let state = 0x9e3779b9;
    const next = (): number => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return state >>> 0;
    };
    const word = new Uint32Array(1);
    const f32 = new Float32Array(word.buffer);
    const prints: ((x: number) => string)[] = [
      (x) => JSON.stringify(x), // the float32 as a double, in full: 16–17 digits mostly
      (x) => x.toPrecision(9), // the shortest text that round-trips a float32
      (x) => x.toExponential(),
      (x) => x.toExponential(8).replace('e+', 'E'),
      (x) => x.toPrecision(6),
      (x) => x.toFixed(Math.min(100, 20 + Math.max(0, -Math.floor(Math.log10(Math.abs(x) || 1))))),
    ];
    for (const print of prints) {
      const items: string[] = [];
      for (let i = 0; i < 200_000 / prints.length; i++) {
        do word[0] = next();
        while (!Number.isFinite(f32[0]!));
        items.push(print(f32[0]!));
      }
      items.push('-0', '-0.0', '0e-5', '-0E+3', '16777217', '-2147483649', '9007199254740993');
      const text = `[${items.join(',')}]`;
      expect(bits(read(text)!)).toEqual(bits(reference(text)));
    }
  });

  it('is bit-identical next to float32 rounding boundaries, where the approximate read steps aside', () => {
    const items: string[] = [];
    for (let i = 0; i < 5000; i++) {
      // Normal float32 magnitudes from 1e-35 to 1e34, and the subnormal ones below them.
      const lo = i % 10 === 0 ? i * 1e-45 : Math.fround(Math.exp((i % 160) - 80) * (1 + i / 5000));
      const hi = nextUp32(lo);
      const mid = (lo + hi) / 2; // exactly halfway: JSON.parse's double rounds to even
      for (const x of [mid, mid * (1 + 2 ** -52), mid * (1 - 2 ** -52)]) {
        items.push(JSON.stringify(x), x.toPrecision(17), x.toPrecision(20), x.toExponential(18));
      }
    }
    const text = `[${items.join(',')}]`;
    expect(bits(read(text)!)).toEqual(bits(reference(text)));
  });

  it('reads digit runs of every length at every byte alignment', () => {
    for (let pad = 0; pad < 4; pad++) {
      for (let len = 1; len <= 45; len++) {
        const intPart = '123456789'.repeat(5).slice(0, len);
        const items = [
          intPart,
          `0.${intPart}`,
          `-${intPart}.${intPart}e-${len % 30}`,
          `0.${'0'.repeat(len)}7`,
        ];
        const text = `${' '.repeat(pad)}[${items.join(',')}]`;
        const buf = Buffer.from(text);
        const r = scanFloat32Array(buf, pad, buf.length);
        expect(r, text).toBeDefined();
        expect(bits(r!.values), text).toEqual(bits(reference(text)));
      }
    }
  });

  it('stops at its limit: bytes after the JSON header (binary data) are never read as digits', () => {
    const buf = Buffer.from('[1.5,2]345');
    expect(Array.from(scanFloat32Array(buf, 0, 7)!.values)).toEqual([1.5, 2]);
    // A number cut by the limit is no number, even when digits follow it.
    expect(scanFloat32Array(Buffer.from('[1,23456789]'), 0, 5)).toBeUndefined();
    expect(scanFloat32Array(Buffer.from('[1,0.1234567]'), 0, 8)).toBeUndefined();
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

  it('answers a malformed number in a large tensor with a 400 that says where', () => {
    const data = imageRows(1).map((x) => JSON.stringify(x));
    for (const bad of ['01', '1.', '-', '1e', '.5', '+1', 'NaN', '1.2.3', '--1', '0x1']) {
      const items = [...data];
      items[17] = bad;
      const body = Buffer.from(
        `{"inputs":[{"name":"image","datatype":"FP32","shape":[1,3,4,4],"data":[${items.join(',')}]}]}`,
      );
      let caught: unknown;
      try {
        parseInferRequest(body, undefined, sig, { maxBatchSize: 8, jsonFastPathMinBytes: 0 });
      } catch (err) {
        caught = err;
      }
      expect(caught, bad).toBeInstanceOf(InferenceError);
      expect((caught as InferenceError).status).toBe(400);
      expect((caught as InferenceError).message, bad).toMatch(/^malformed JSON in infer request: \S/);
    }
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

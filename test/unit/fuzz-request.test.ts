/**
 * Input hardening: whatever body, header length or binary framing a client sends, the OIP request
 * parser answers with a 400 InferenceError (never another exception, never a hang).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DATATYPES } from '../../serving/server/datatypes';
import { InferenceError } from '../../serving/server/errors';
import { parseInferRequest } from '../../serving/server/request';
import type { Signature } from '../../serving/server/signature';

const batched: Signature = {
  inputs: [
    { name: 'features', datatype: 'FP32', shape: [-1, 3] },
    { name: 'ids', datatype: 'INT64', shape: [-1] },
    { name: 'text', datatype: 'BYTES', shape: [-1] },
    { name: 'half', datatype: 'FP16', shape: [-1, 2] },
    { name: 'flag', datatype: 'BOOL', shape: [-1] },
  ],
  outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
  batched: true,
};
const unbatched: Signature = {
  inputs: [{ name: 'x', datatype: 'UINT8', shape: [2, 2] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [1] }],
  batched: false,
};
const limits = { maxBatchSize: 8 };

/** Either parses or throws a 400 naming the problem, within a time bound. */
function only400(body: Buffer, headerLength: number | undefined, sig: Signature): void {
  const started = performance.now();
  try {
    parseInferRequest(body, headerLength, sig, limits);
  } catch (err) {
    if (!(err instanceof InferenceError)) throw err;
    expect(err.status).toBe(400);
    expect(err.message.length).toBeGreaterThan(0);
  }
  expect(performance.now() - started).toBeLessThan(500);
}

const names = fc.constantFrom('features', 'ids', 'text', 'half', 'flag', 'x', '', 'other');
const datatype = fc.oneof(fc.constantFrom(...Object.keys(DATATYPES)), fc.string({ maxLength: 6 }));
const dim = fc.oneof(
  fc.integer({ min: -2, max: 4 }),
  fc.constantFrom(1e9, 2 ** 31, 0.5, Number.MAX_SAFE_INTEGER),
);
const scalar = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.string({ maxLength: 8 }),
  fc.constant(null),
  fc.bigInt().map(String),
);
const data = fc.oneof(
  fc.array(scalar, { maxLength: 12 }),
  fc.array(fc.array(scalar, { maxLength: 4 }), { maxLength: 4 }),
  scalar,
  fc.anything({ maxDepth: 2 }),
);
const input = fc.record(
  {
    name: names,
    datatype,
    shape: fc.oneof(fc.array(dim, { maxLength: 3 }), fc.anything({ maxDepth: 1 })),
    data,
    parameters: fc.record(
      { binary_data_size: fc.oneof(fc.nat({ max: 64 }), fc.integer(), fc.double()) },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['name', 'datatype', 'shape'] },
);
const request = fc.record(
  {
    id: fc.oneof(fc.string({ maxLength: 5 }), fc.integer()),
    inputs: fc.array(input, { maxLength: 4 }),
    outputs: fc.array(
      fc.record({ name: fc.oneof(names, fc.constant('score')), parameters: fc.anything({ maxDepth: 1 }) }),
      { maxLength: 2 },
    ),
    parameters: fc.record(
      { binary_data_output: fc.anything({ maxDepth: 0 }), timeout: fc.oneof(fc.nat(), fc.double()) },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['inputs'] },
);

describe('OIP request parser under arbitrary input', () => {
  it('arbitrary bytes and header lengths', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.option(fc.oneof(fc.nat({ max: 400 }), fc.constantFrom(Number.MAX_SAFE_INTEGER, 2 ** 53 + 1))),
        fc.boolean(),
        (bytes, headerLength, b) =>
          only400(Buffer.from(bytes), headerLength ?? undefined, b ? batched : unbatched),
      ),
      { numRuns: 1500 },
    );
  });

  it('JSON requests shaped like OIP', () => {
    fc.assert(
      fc.property(request, fc.boolean(), (req, b) =>
        only400(Buffer.from(JSON.stringify(req)), undefined, b ? batched : unbatched),
      ),
      { numRuns: 2000 },
    );
  });

  it('binary tensor framing: JSON header + arbitrary tensor bytes', () => {
    fc.assert(
      fc.property(
        request,
        fc.uint8Array({ maxLength: 128 }),
        fc.integer({ min: -8, max: 8 }),
        fc.boolean(),
        (req, tail, skew, b) => {
          const header = Buffer.from(JSON.stringify(req));
          const body = Buffer.concat([header, Buffer.from(tail)]);
          // The declared header length is right, or off by a little either way.
          const declared = Math.max(0, header.length + skew);
          only400(body, declared, b ? batched : unbatched);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('well-formed binary requests with mismatched sizes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 64 }),
        fc.integer({ min: 0, max: 64 }),
        (rows, declaredSize, actual) => {
          const header = Buffer.from(
            JSON.stringify({
              inputs: [
                {
                  name: 'x',
                  datatype: 'UINT8',
                  shape: [2, 2],
                  parameters: { binary_data_size: declaredSize },
                },
              ],
            }),
          );
          const body = Buffer.concat([header, Buffer.alloc(actual, rows)]);
          only400(body, header.length, unbatched);
        },
      ),
      { numRuns: 500 },
    );
  });
});

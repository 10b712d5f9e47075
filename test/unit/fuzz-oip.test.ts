/**
 * Input hardening: whatever body, Inference-Header-Content-Length or JSON shape a client sends,
 * the OIP request parser answers with a 400 InferenceError (never another exception, never a hang).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InferenceError } from '../../serving/server/errors';
import { parseInferRequest } from '../../serving/server/request';
import type { Signature } from '../../serving/server/signature';
import { CASE_CPU_MS, cpuMsSince } from '../helpers/cpu';

const sig: Signature = {
  inputs: [
    { name: 'features', datatype: 'FP32', shape: [-1, 3] },
    { name: 'ids', datatype: 'INT64', shape: [-1] },
    { name: 'text', datatype: 'BYTES', shape: [-1] },
  ],
  outputs: [
    { name: 'score', datatype: 'FP32', shape: [-1, 1] },
    { name: 'label', datatype: 'BOOL', shape: [-1] },
  ],
  batched: true,
};
const limits = { maxBatchSize: 8 };

/** Runs one parse; anything but success or a 400 InferenceError fails the property. */
function onlyBadRequests(body: Buffer, headerLength: number | undefined): void {
  const started = process.cpuUsage();
  try {
    parseInferRequest(body, headerLength, sig, limits);
  } catch (err) {
    if (!(err instanceof InferenceError)) throw err;
    expect(err.status).toBe(400);
    expect(err.message.length).toBeGreaterThan(0);
  }
  expect(cpuMsSince(started)).toBeLessThan(CASE_CPU_MS);
}

const datatype = fc.constantFrom('FP32', 'INT64', 'BYTES', 'BOOL', 'FP16', 'UINT8', 'FP64', 'NOPE', '');
const name = fc.constantFrom('features', 'ids', 'text', 'score', 'other', '');
const dim = fc.oneof(fc.integer({ min: -2, max: 10 }), fc.constantFrom(2 ** 31, 2 ** 53 - 1, 1e15, 0.5, NaN));
const leaf = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.string({ maxLength: 8 }),
  fc.constant(null),
);
/** Data as OIP clients send it: flat or nested arrays, sometimes not an array at all. */
const data = fc.oneof(
  fc.array(leaf, { maxLength: 24 }),
  fc.array(fc.array(leaf, { maxLength: 4 }), { maxLength: 8 }),
  leaf,
  fc.anything({ maxDepth: 2 }),
);
const input = fc.record(
  {
    name,
    datatype,
    shape: fc.oneof(fc.array(dim, { maxLength: 3 }), fc.anything({ maxDepth: 1 })),
    data,
    parameters: fc.record(
      { binary_data_size: fc.oneof(fc.integer({ min: -4, max: 64 }), fc.anything({ maxDepth: 0 })) },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);
const request = fc.record(
  {
    id: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
    parameters: fc.oneof(
      fc.record(
        {
          binary_data_output: fc.oneof(fc.boolean(), fc.string()),
          timeout: fc.oneof(fc.integer({ min: -10, max: 1e9 }), fc.double()),
        },
        { requiredKeys: [] },
      ),
      fc.anything({ maxDepth: 1 }),
    ),
    inputs: fc.oneof(fc.array(input, { maxLength: 4 }), fc.anything({ maxDepth: 1 })),
    outputs: fc.oneof(
      fc.array(
        fc.record(
          {
            name,
            parameters: fc.record({ binary_data: fc.anything({ maxDepth: 0 }) }, { requiredKeys: [] }),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
      fc.anything({ maxDepth: 1 }),
    ),
  },
  { requiredKeys: [] },
);

describe('OIP request parser under arbitrary input', () => {
  it('arbitrary bytes, with and without a header length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 512 }),
        fc.option(fc.oneof(fc.integer({ min: -8, max: 600 }), fc.constantFrom(NaN, 2.5, 2 ** 53)), {
          nil: undefined,
        }),
        (bytes, headerLength) => onlyBadRequests(Buffer.from(bytes), headerLength),
      ),
      { numRuns: 300 },
    );
  });

  it('arbitrary JSON values as the body', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) =>
        onlyBadRequests(Buffer.from(JSON.stringify(value) ?? 'null'), undefined),
      ),
      { numRuns: 300 },
    );
  });

  it('request-shaped JSON with arbitrary fields', () => {
    fc.assert(
      fc.property(request, (req) => {
        // JSON.stringify drops what JSON cannot hold (undefined, functions); that is what a wire sees.
        onlyBadRequests(Buffer.from(JSON.stringify(req) ?? 'null'), undefined);
      }),
      { numRuns: 300 },
    );
  });

  it('binary extension framing: a JSON header followed by arbitrary tensor bytes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            name,
            datatype,
            shape: fc.array(fc.integer({ min: -1, max: 6 }), { maxLength: 3 }),
            size: fc.integer({ min: -2, max: 80 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        fc.uint8Array({ maxLength: 256 }),
        fc.integer({ min: -4, max: 4 }),
        (inputs, tail, skew) => {
          const header = Buffer.from(
            JSON.stringify({
              inputs: inputs.map((i) => ({
                name: i.name,
                datatype: i.datatype,
                shape: i.shape,
                parameters: { binary_data_size: i.size },
              })),
            }),
          );
          const body = Buffer.concat([header, Buffer.from(tail)]);
          // Sometimes the header length is off by a few bytes, as a buggy client would send it.
          onlyBadRequests(body, header.length + skew);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a well-formed binary request still parses (the generators reach the happy path)', () => {
    const ids = Buffer.alloc(16);
    ids.writeBigInt64LE(7n, 0);
    ids.writeBigInt64LE(8n, 8);
    const text = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.from('a'), Buffer.from([0, 0, 0, 0])]);
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'features', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
          { name: 'ids', datatype: 'INT64', shape: [2], parameters: { binary_data_size: 16 } },
          { name: 'text', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: text.length } },
        ],
      }),
    );
    const r = parseInferRequest(Buffer.concat([header, ids, text]), header.length, sig, limits);
    expect(r.rows).toBe(2);
    expect(r.inputs[2]!.data).toEqual(['a', '']);
  });

  // Found by this suite: flatten() used to recurse once per nesting level, so `data` nested
  // ~10 000 deep (a 20 kB body) overflowed the stack and answered 500; now a 400.
  it('deeply nested "data" is a 400, not a stack overflow', () => {
    const depth = 10_000;
    const nested = '['.repeat(depth) + '1' + ']'.repeat(depth);
    const body = Buffer.from(
      `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,3],"data":${nested}}]}`,
    );
    onlyBadRequests(body, undefined);
  });
});

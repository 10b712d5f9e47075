/**
 * Input hardening for the gRPC door: whatever a client encodes in a ModelInferRequest, the
 * parser answers with a 400 InferenceError (never another exception, never a hang), and the
 * router's field scanner reads any byte string without throwing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { topLevelStrings } from '../../serving/router/grpc';
import { InferenceError } from '../../serving/server/errors';
import { oipService, type ModelInferRequest } from '../../serving/server/grpc-messages';
import { parseGrpcInferRequest } from '../../serving/server/grpc-request';
import type { Signature } from '../../serving/server/signature';
import { CASE_CPU_MS, cpuMsSince } from '../helpers/cpu';

const sig: Signature = {
  inputs: [
    { name: 'features', datatype: 'FP32', shape: [-1, 3] },
    { name: 'ids', datatype: 'INT32', shape: [-1] },
    { name: 'text', datatype: 'BYTES', shape: [-1] },
  ],
  outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
  batched: true,
};
/** One input each as well, so a case is not refused for a missing input before its own is read. */
const sigs: Signature[] = [sig, ...sig.inputs.map((input) => ({ ...sig, inputs: [input] }))];
const method = oipService().ModelInfer!;

const name = fc.constantFrom('features', 'ids', 'text', 'score', 'other', '');
const datatype = fc.constantFrom('FP32', 'INT32', 'BYTES', 'FP16', 'INT64', 'NOPE', '');
const dim = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(2 ** 31, 2 ** 40, 2 ** 53 - 1));
const contents = fc.record(
  {
    fp32_contents: fc.array(fc.float(), { maxLength: 12 }),
    int_contents: fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 12 }),
    int64_contents: fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String), {
      maxLength: 4,
    }),
    bytes_contents: fc.array(
      fc.uint8Array({ maxLength: 6 }).map((a) => Buffer.from(a)),
      { maxLength: 6 },
    ),
    bool_contents: fc.array(fc.boolean(), { maxLength: 6 }),
  },
  { requiredKeys: [] },
);
const request = fc.record(
  {
    model_name: fc.constant('m'),
    id: fc.string({ maxLength: 8 }),
    inputs: fc.array(
      fc.record(
        { name, datatype, shape: fc.array(dim, { maxLength: 3 }), contents },
        { requiredKeys: ['name'] },
      ),
      { maxLength: 4 },
    ),
    outputs: fc.array(fc.record({ name }), { maxLength: 2 }),
    raw_input_contents: fc.array(
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      { maxLength: 4 },
    ),
    parameters: fc.dictionary(
      fc.constantFrom('timeout', 'x'),
      fc.oneof(
        fc.record({ int64_param: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String) }),
        fc.record({ string_param: fc.string({ maxLength: 4 }) }),
      ),
    ),
  },
  { requiredKeys: ['model_name'] },
);

describe('gRPC ModelInferRequest parser', () => {
  it('answers any encodable request with success or a 400 InferenceError, quickly', () => {
    fc.assert(
      fc.property(request, fc.constantFrom(...sigs), (r, signature) => {
        // Through the real codec, so the parser sees what grpc-js hands the server.
        const decoded = method.requestDeserialize(method.requestSerialize(r)) as ModelInferRequest;
        const started = process.cpuUsage();
        try {
          parseGrpcInferRequest(decoded, signature, { maxBatchSize: 8 });
        } catch (err) {
          if (!(err instanceof InferenceError)) throw err;
          expect(err.status).toBe(400);
          expect(err.message.length).toBeGreaterThan(0);
        }
        expect(cpuMsSince(started)).toBeLessThan(CASE_CPU_MS);
      }),
      { numRuns: 600 },
    );
  });

  it('refuses a huge shape with few typed values before allocating its size', () => {
    for (const [datatype, field] of [
      ['INT32', 'int_contents'],
      ['FP32', 'fp32_contents'],
      ['BYTES', 'bytes_contents'],
    ] as const) {
      const input = sig.inputs.find((i) => i.datatype === datatype)!;
      const request = {
        model_name: 'm',
        inputs: [
          {
            name: input.name,
            datatype,
            shape: input.shape.map((d) => (d === -1 ? 2 ** 40 : d)),
            contents: { [field]: [] },
          },
        ],
      };
      const decoded = method.requestDeserialize(method.requestSerialize(request)) as ModelInferRequest;
      expect(() => parseGrpcInferRequest(decoded, { ...sig, inputs: [input] }, { maxBatchSize: 8 })).toThrow(
        new RegExp(`contents.${field} has 0 elements but shape`),
      );
    }
  });

  it("the router's field scanner reads any bytes without throwing, and real messages exactly", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const out = topLevelStrings(Buffer.from(bytes), [1, 3]);
        expect(out === undefined || out instanceof Map).toBe(true);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(request, fc.string({ maxLength: 12 }), (r, model) => {
        const bytes = method.requestSerialize({ ...r, model_name: model });
        const out = topLevelStrings(bytes, [1, 3]);
        expect(out?.get(1) ?? '').toBe(model);
        expect(out?.get(3) ?? '').toBe(r.id ?? '');
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * ModelInferRequest → ParsedRequest, checked against the signature exactly as the HTTP parser
 * checks JSON (same messages, same batch key, so gRPC and HTTP requests share batches), and the
 * ModelInferResponse the server answers, always in the raw_output_contents form.
 */
import {
  DATATYPES,
  elementCount,
  isOipDatatype,
  oipFromOrt,
  type TensorData,
  type Tensor,
} from './datatypes';
import { badRequest } from './errors';
import {
  intParameter,
  type InferInputTensor,
  type ModelInferRequest,
  type ModelInferResponse,
} from './grpc-messages';
import {
  binaryTensor,
  checkShape,
  type ParsedRequest,
  type ParseLimits,
  type RequestedOutput,
} from './request';
import { binaryData } from './response';
import type { Signature, TensorSpec } from './signature';

const hasContents = (t: InferInputTensor): boolean => {
  const c = t.contents;
  if (!c) return false;
  for (const list of Object.values(c)) if (Array.isArray(list) && list.length > 0) return true;
  return false;
};

/** Typed `contents` into a typed array or string list; the field must match the datatype. */
function contentsTensor(spec: TensorSpec, input: InferInputTensor, shape: number[]): TensorData {
  const where = `input "${spec.name}"`;
  const c = input.contents;
  const expected = elementCount(shape);
  const take = <T>(field: keyof NonNullable<typeof c>, list: T[] | undefined): T[] => {
    const values = list ?? [];
    if (values.length !== expected) {
      throw badRequest(
        `${where}: contents.${String(field)} has ${values.length} elements but shape [${shape.join(', ')}] needs ${expected}`,
      );
    }
    return values;
  };
  const info = DATATYPES[spec.datatype];
  switch (spec.datatype) {
    case 'BOOL':
      return Uint8Array.from(take('bool_contents', c?.bool_contents), (b) => (b ? 1 : 0));
    case 'INT8':
    case 'INT16':
    case 'INT32': {
      // Counted before allocating: a huge shape with few values must not allocate its size.
      const values = take('int_contents', c?.int_contents);
      const out = info.make(expected) as Int8Array | Int16Array | Int32Array;
      out.set(values);
      return out;
    }
    case 'UINT8':
    case 'UINT16':
    case 'UINT32': {
      const values = take('uint_contents', c?.uint_contents);
      const out = info.make(expected) as Uint8Array | Uint16Array | Uint32Array;
      out.set(values);
      return out;
    }
    case 'INT64':
      return BigInt64Array.from(take('int64_contents', c?.int64_contents), (v) => BigInt(v));
    case 'UINT64':
      return BigUint64Array.from(take('uint64_contents', c?.uint64_contents), (v) => BigInt(v));
    case 'FP32':
      return Float32Array.from(take('fp32_contents', c?.fp32_contents));
    case 'FP64':
      return Float64Array.from(take('fp64_contents', c?.fp64_contents));
    case 'BYTES':
      return take('bytes_contents', c?.bytes_contents).map((b) => b.toString('utf8'));
    case 'FP16':
      throw badRequest(`${where}: FP16 has no typed contents field; send it in raw_input_contents`);
  }
}

function dims(shape: (string | number)[], where: string): number[] {
  return shape.map((d) => {
    const n = Number(d);
    if (!Number.isSafeInteger(n) || n < 0)
      throw badRequest(`${where}: shape has a negative or huge dimension ${d}`);
    return n;
  });
}

export function parseGrpcInferRequest(
  req: ModelInferRequest,
  sig: Signature,
  limits: ParseLimits,
): ParsedRequest {
  if (req.inputs.length === 0) throw badRequest('invalid infer request: inputs: expected at least one input');
  const raw = req.raw_input_contents;
  if (raw.length > 0) {
    if (raw.length !== req.inputs.length) {
      throw badRequest(
        `raw_input_contents has ${raw.length} entries but the request has ${req.inputs.length} inputs (one each, in order)`,
      );
    }
    const mixed = req.inputs.find(hasContents);
    if (mixed)
      throw badRequest(`input "${mixed.name}" has contents although the request uses raw_input_contents`);
  }
  const given = new Map<string, { input: InferInputTensor; raw?: Buffer; index: number }>();
  req.inputs.forEach((input, index) => {
    if (given.has(input.name)) throw badRequest(`input "${input.name}" is given more than once`);
    if (!sig.inputs.some((s) => s.name === input.name)) {
      throw badRequest(
        `unknown input "${input.name}"; the model's inputs are: ${sig.inputs.map((s) => s.name).join(', ')}`,
      );
    }
    given.set(input.name, { input, index, ...(raw.length > 0 ? { raw: raw[index]! } : {}) });
  });

  const inputs: Tensor[] = [];
  let rows = 1;
  const keyParts: string[] = [];
  for (const spec of sig.inputs) {
    const entry = given.get(spec.name);
    if (!entry)
      throw badRequest(`missing input "${spec.name}" (${spec.datatype} [${spec.shape.join(', ')}])`);
    const { input } = entry;
    if (!isOipDatatype(input.datatype) || input.datatype !== spec.datatype) {
      throw badRequest(
        `input "${spec.name}": datatype ${input.datatype} does not match the model's ${spec.datatype}`,
      );
    }
    const shape = dims(input.shape, `input "${spec.name}"`);
    checkShape(spec, shape);
    const data = entry.raw
      ? binaryTensor(spec, shape, entry.raw, `raw_input_contents[${entry.index}]`)
      : contentsTensor(spec, input, shape);
    if (sig.batched) {
      const r = shape[0]!;
      if (inputs.length === 0) rows = r;
      else if (r !== rows) {
        throw badRequest(`input "${spec.name}": batch dimension ${r} differs from the other inputs' ${rows}`);
      }
      keyParts.push(shape.slice(1).join('x'));
    }
    inputs.push({ type: DATATYPES[spec.datatype].ort, dims: shape, data });
  }
  if (sig.batched && rows < 1) throw badRequest(`batch size must be at least 1, got ${rows}`);
  if (sig.batched && rows > limits.maxBatchSize) {
    throw badRequest(`batch size ${rows} exceeds the model's max batch size ${limits.maxBatchSize}`);
  }

  let outputs: RequestedOutput[];
  if (req.outputs.length > 0) {
    outputs = req.outputs.map((o) => {
      if (!sig.outputs.some((s) => s.name === o.name)) {
        throw badRequest(
          `unknown output "${o.name}"; the model's outputs are: ${sig.outputs.map((s) => s.name).join(', ')}`,
        );
      }
      return { name: o.name, binary: true };
    });
  } else outputs = sig.outputs.map((s) => ({ name: s.name, binary: true }));
  keyParts.push('>' + [...new Set(outputs.map((o) => o.name))].sort().join(','));

  const timeoutUs = intParameter(req.parameters['timeout']);
  return {
    ...(req.id !== '' ? { id: req.id } : {}),
    inputs,
    outputs,
    rows,
    ...(timeoutUs !== undefined && timeoutUs >= 0 ? { timeoutUs } : {}),
    batchKey: keyParts.join('|'),
  };
}

export function encodeGrpcInferResponse(
  modelName: string,
  modelVersion: string,
  id: string | undefined,
  outputs: { name: string; tensor: Tensor }[],
): ModelInferResponse {
  return {
    model_name: modelName,
    model_version: modelVersion,
    id: id ?? '',
    outputs: outputs.map((o) => ({
      name: o.name,
      datatype: oipFromOrt(o.tensor.type) ?? o.tensor.type,
      shape: o.tensor.dims,
    })),
    raw_output_contents: outputs.map((o) => binaryData(o.tensor)),
  };
}

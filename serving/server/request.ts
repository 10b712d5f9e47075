/**
 * Parses and validates an OIP v2 infer request (JSON, or JSON header + binary tensor data)
 * against the model's signature. Every problem is a 400 naming the field and what was expected.
 */
import { z } from 'zod';
import { DATATYPES, elementCount, isOipDatatype, toHalf, type Tensor, type TensorData } from './datatypes';
import { badRequest } from './errors';
import { DeferredData, splitInferRequest } from './json-tensors';
import type { Signature, TensorSpec } from './signature';

const inputSchema = z.object({
  name: z.string().min(1),
  shape: z.array(z.number().int().nonnegative()),
  datatype: z.string(),
  parameters: z.looseObject({ binary_data_size: z.number().int().nonnegative().optional() }).optional(),
  data: z.unknown().optional(),
});

const requestSchema = z.object({
  id: z.string().optional(),
  parameters: z
    .looseObject({
      binary_data_output: z.boolean().optional(),
      /** Microseconds the request may wait in the queue (Triton's name and unit). */
      timeout: z.number().int().nonnegative().optional(),
    })
    .optional(),
  inputs: z.array(inputSchema).min(1),
  outputs: z
    .array(
      z.object({
        name: z.string().min(1),
        parameters: z.looseObject({ binary_data: z.boolean().optional() }).optional(),
      }),
    )
    .optional(),
});

export interface RequestedOutput {
  name: string;
  /** Return this output in the binary tensor extension rather than as JSON. */
  binary: boolean;
}

export interface ParsedRequest {
  id?: string;
  /** Inputs in signature order. */
  inputs: Tensor[];
  outputs: RequestedOutput[];
  /** Rows along the batch dimension (1 for unbatched models). */
  rows: number;
  timeoutUs?: number;
  /** Requests with equal keys may be merged into one batch: same non-batch shapes and outputs. */
  batchKey: string;
}

export interface ParseLimits {
  maxBatchSize: number;
  /** Bodies from this size on take the large-tensor JSON fast path (json-tensors.ts); tests vary it. */
  jsonFastPathMinBytes?: number;
}

function zodMessage(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return 'invalid infer request';
  const where = issue.path.length
    ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')
    : '';
  return `invalid infer request: ${where ? `${where.replace(/^\./, '')}: ` : ''}${issue.message}`;
}

/** Nesting deeper than any real tensor's rank is refused: a hostile body must not blow the stack. */
const MAX_DATA_DEPTH = 32;

/** Depth-first, without recursion, so `[[[[...]]]]` costs a 400, never a stack overflow. */
function flatten(data: unknown, out: unknown[], where: string): void {
  const stack: { items: unknown[]; next: number }[] = [{ items: [data], next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next >= top.items.length) {
      stack.pop();
      continue;
    }
    const item = top.items[top.next++];
    if (Array.isArray(item)) {
      if (stack.length > MAX_DATA_DEPTH)
        throw badRequest(`${where}: "data" is nested deeper than ${MAX_DATA_DEPTH} levels`);
      stack.push({ items: item, next: 0 });
    } else out.push(item);
  }
}

/** JSON `data` (flat or nested) into a typed array or string list, checking each element. */
function jsonTensor(spec: TensorSpec, shape: number[], given: unknown): TensorData {
  const where = `input "${spec.name}"`;
  let data = given;
  if (given instanceof DeferredData) {
    if (spec.datatype === 'FP32') {
      const expected = elementCount(shape);
      if (given.float32.length !== expected) {
        throw badRequest(
          `${where}: data has ${given.float32.length} elements but shape [${shape.join(', ')}] needs ${expected}`,
        );
      }
      return given.float32;
    }
    try {
      data = given.parse();
    } catch (err) {
      throw badRequest(`malformed JSON in infer request: ${where}: "data": ${(err as Error).message}`);
    }
  }
  if (!Array.isArray(data)) throw badRequest(`${where}: "data" must be an array (flat or nested)`);
  const flat: unknown[] = [];
  flatten(data, flat, where);
  const expected = elementCount(shape);
  if (flat.length !== expected) {
    throw badRequest(
      `${where}: data has ${flat.length} elements but shape [${shape.join(', ')}] needs ${expected}`,
    );
  }
  const info = DATATYPES[spec.datatype];
  const bad = (i: number, what: string): never => {
    throw badRequest(
      `${where}: data[${i}] is ${JSON.stringify(flat[i])}, expected ${what} for ${spec.datatype}`,
      `${where}: data[${i}] is not ${what} for ${spec.datatype}`,
    );
  };
  switch (info.json) {
    case 'string': {
      for (let i = 0; i < flat.length; i++) if (typeof flat[i] !== 'string') bad(i, 'a string');
      return flat as string[];
    }
    case 'boolean': {
      const out = new Uint8Array(flat.length);
      for (let i = 0; i < flat.length; i++) {
        const v = flat[i];
        if (typeof v !== 'boolean') bad(i, 'true or false');
        out[i] = v ? 1 : 0;
      }
      return out;
    }
    case 'bigint': {
      const out = info.make(flat.length) as BigInt64Array | BigUint64Array;
      for (let i = 0; i < flat.length; i++) {
        const v = flat[i];
        if (typeof v !== 'number' || !Number.isSafeInteger(v)) bad(i, 'an integer');
        out[i] = BigInt(v as number);
      }
      return out;
    }
    case 'integer': {
      const out = info.make(flat.length) as Exclude<TensorData, string[] | BigInt64Array | BigUint64Array>;
      for (let i = 0; i < flat.length; i++) {
        const v = flat[i];
        if (typeof v !== 'number' || !Number.isInteger(v)) bad(i, 'an integer');
        out[i] = v as number;
      }
      return out;
    }
    case 'number': {
      const half = spec.datatype === 'FP16';
      const out = info.make(flat.length) as Float32Array | Float64Array | Uint16Array;
      for (let i = 0; i < flat.length; i++) {
        const v = flat[i];
        if (typeof v !== 'number') bad(i, 'a number');
        out[i] = half ? toHalf(v as number) : (v as number);
      }
      return out;
    }
  }
}

/**
 * Binary tensor data: fixed-size little-endian elements, or 4-byte length-prefixed BYTES.
 * @param source what the client called these bytes, for the error message
 */
export function binaryTensor(
  spec: TensorSpec,
  shape: number[],
  bytes: Buffer,
  source = 'binary_data_size',
): TensorData {
  const where = `input "${spec.name}"`;
  const count = elementCount(shape);
  const info = DATATYPES[spec.datatype];
  if (spec.datatype === 'BYTES') {
    const out: string[] = [];
    let off = 0;
    while (off < bytes.length) {
      if (off + 4 > bytes.length) throw badRequest(`${where}: truncated BYTES element length at byte ${off}`);
      const len = bytes.readUInt32LE(off);
      off += 4;
      if (off + len > bytes.length)
        throw badRequest(`${where}: BYTES element ${out.length} runs past its data`);
      out.push(bytes.toString('utf8', off, off + len));
      off += len;
    }
    if (out.length !== count) {
      throw badRequest(
        `${where}: binary data has ${out.length} elements but shape [${shape.join(', ')}] needs ${count}`,
      );
    }
    return out;
  }
  if (bytes.length !== count * info.size) {
    throw badRequest(
      `${where}: ${source} is ${bytes.length} bytes but shape [${shape.join(', ')}] of ${spec.datatype} needs ${count * info.size}`,
    );
  }
  // Copy into a fresh, aligned buffer that can be transferred to a session worker.
  const ab = new ArrayBuffer(bytes.length);
  new Uint8Array(ab).set(bytes);
  return info.fromBuffer(ab, 0, count);
}

export function checkShape(spec: TensorSpec, shape: number[]): void {
  const ok = shape.length === spec.shape.length && spec.shape.every((d, i) => d === -1 || d === shape[i]);
  if (!ok) {
    throw badRequest(
      `input "${spec.name}": shape [${shape.join(', ')}] does not match the model's [${spec.shape.join(', ')}] (-1 is any size)`,
    );
  }
}

/** Puts each deferred data array where the skeleton has its `null`. */
function attachDeferred(raw: unknown, data: Map<number, DeferredData>): void {
  const inputs = (raw as { inputs?: unknown } | null)?.inputs;
  if (!Array.isArray(inputs)) return;
  for (const [i, d] of data) {
    const input = inputs[i] as Record<string, unknown> | undefined;
    if (input && typeof input === 'object' && input.data === null) input.data = d;
  }
}

/**
 * @param body the whole request body
 * @param headerLength `Inference-Header-Content-Length` when the binary extension is used
 */
export function parseInferRequest(
  body: Buffer,
  headerLength: number | undefined,
  sig: Signature,
  limits: ParseLimits,
): ParsedRequest {
  if (headerLength !== undefined && headerLength > body.length) {
    throw badRequest(
      `Inference-Header-Content-Length is ${headerLength} but the body has only ${body.length} bytes`,
    );
  }
  const jsonEnd = headerLength ?? body.length;
  let raw: unknown;
  // Large tensors: their data arrays are cut out and read without building JS values.
  const split = splitInferRequest(body, jsonEnd, limits.jsonFastPathMinBytes);
  try {
    raw = JSON.parse(split ? split.skeleton : body.toString('utf8', 0, jsonEnd));
    if (split) attachDeferred(raw, split.data);
  } catch (err) {
    if (!split) throw badRequest(`malformed JSON in infer request: ${(err as Error).message}`);
    // The whole body's own error, with its own positions.
    try {
      raw = JSON.parse(body.toString('utf8', 0, jsonEnd));
    } catch (whole) {
      throw badRequest(`malformed JSON in infer request: ${(whole as Error).message}`);
    }
  }
  const parsed = requestSchema.safeParse(raw);
  if (!parsed.success) throw badRequest(zodMessage(parsed.error));
  const req = parsed.data;

  const given = new Map<string, (typeof req.inputs)[number]>();
  for (const input of req.inputs) {
    if (given.has(input.name)) throw badRequest(`input "${input.name}" is given more than once`);
    if (!sig.inputs.some((s) => s.name === input.name)) {
      throw badRequest(
        `unknown input "${input.name}"; the model's inputs are: ${sig.inputs.map((s) => s.name).join(', ')}`,
      );
    }
    given.set(input.name, input);
  }

  // Binary data follows the JSON header in the order the inputs are listed.
  let offset = jsonEnd;
  const binary = new Map<string, Buffer>();
  for (const input of req.inputs) {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) continue;
    if (headerLength === undefined) {
      throw badRequest(
        `input "${input.name}" has binary_data_size but the request has no Inference-Header-Content-Length header`,
      );
    }
    if (input.data !== undefined)
      throw badRequest(`input "${input.name}" has both "data" and binary_data_size`);
    if (offset + size > body.length) {
      throw badRequest(`input "${input.name}": binary_data_size ${size} runs past the end of the body`);
    }
    binary.set(input.name, body.subarray(offset, offset + size));
    offset += size;
  }
  if (headerLength !== undefined && offset !== body.length) {
    throw badRequest(`the body has ${body.length - offset} bytes of binary data that no input claims`);
  }

  const inputs: Tensor[] = [];
  let rows = 1;
  const keyParts: string[] = [];
  for (const spec of sig.inputs) {
    const input = given.get(spec.name);
    if (!input)
      throw badRequest(`missing input "${spec.name}" (${spec.datatype} [${spec.shape.join(', ')}])`);
    if (!isOipDatatype(input.datatype) || input.datatype !== spec.datatype) {
      throw badRequest(
        `input "${spec.name}": datatype ${input.datatype} does not match the model's ${spec.datatype}`,
      );
    }
    checkShape(spec, input.shape);
    const bytes = binary.get(spec.name);
    if (!bytes && input.data === undefined)
      throw badRequest(`input "${spec.name}" has no "data" and no binary_data_size`);
    const data = bytes ? binaryTensor(spec, input.shape, bytes) : jsonTensor(spec, input.shape, input.data);
    if (sig.batched) {
      const r = input.shape[0]!;
      if (inputs.length === 0) rows = r;
      else if (r !== rows) {
        throw badRequest(`input "${spec.name}": batch dimension ${r} differs from the other inputs' ${rows}`);
      }
      keyParts.push(input.shape.slice(1).join('x'));
    }
    inputs.push({ type: DATATYPES[spec.datatype].ort, dims: input.shape, data });
  }
  if (sig.batched && rows < 1) throw badRequest(`batch size must be at least 1, got ${rows}`);
  if (sig.batched && rows > limits.maxBatchSize) {
    throw badRequest(`batch size ${rows} exceeds the model's max batch size ${limits.maxBatchSize}`);
  }

  const defaultBinary = req.parameters?.binary_data_output ?? false;
  let outputs: RequestedOutput[];
  if (req.outputs && req.outputs.length > 0) {
    outputs = req.outputs.map((o) => {
      if (!sig.outputs.some((s) => s.name === o.name)) {
        throw badRequest(
          `unknown output "${o.name}"; the model's outputs are: ${sig.outputs.map((s) => s.name).join(', ')}`,
        );
      }
      return { name: o.name, binary: o.parameters?.binary_data ?? defaultBinary };
    });
  } else {
    outputs = sig.outputs.map((s) => ({ name: s.name, binary: defaultBinary }));
  }
  keyParts.push('>' + [...new Set(outputs.map((o) => o.name))].sort().join(','));

  return {
    ...(req.id !== undefined ? { id: req.id } : {}),
    inputs,
    outputs,
    rows,
    ...(req.parameters?.timeout !== undefined ? { timeoutUs: req.parameters.timeout } : {}),
    batchKey: keyParts.join('|'),
  };
}

/**
 * Shadow comparison: does the shadow variant answer what the primary answered? Outputs are
 * decoded from either OIP encoding (JSON `data` or the binary tensor extension) and compared by
 * name, shape and value, numbers within a tolerance; what cannot be decoded to numbers (BYTES,
 * FP16) is compared byte for byte.
 */
export type Comparison = 'agree' | 'disagree' | 'error';

export interface Answer {
  status: number;
  /** Value of the `inference-header-content-length` response header, when present. */
  headerLength?: number;
  body: Buffer;
}

interface DecodedOutput {
  shape: number[];
  datatype: string;
  values: number[] | Buffer;
}

const numericReaders: Record<string, [number, (b: Buffer, off: number) => number]> = {
  BOOL: [1, (b, o) => b.readUInt8(o)],
  UINT8: [1, (b, o) => b.readUInt8(o)],
  INT8: [1, (b, o) => b.readInt8(o)],
  UINT16: [2, (b, o) => b.readUInt16LE(o)],
  INT16: [2, (b, o) => b.readInt16LE(o)],
  UINT32: [4, (b, o) => b.readUInt32LE(o)],
  INT32: [4, (b, o) => b.readInt32LE(o)],
  UINT64: [8, (b, o) => Number(b.readBigUInt64LE(o))],
  INT64: [8, (b, o) => Number(b.readBigInt64LE(o))],
  FP32: [4, (b, o) => b.readFloatLE(o)],
  FP64: [8, (b, o) => b.readDoubleLE(o)],
};

function flatten(data: unknown, out: unknown[]): unknown[] {
  if (Array.isArray(data)) for (const d of data) flatten(d, out);
  else out.push(data);
  return out;
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return NaN;
}

/** Decodes an OIP infer response into outputs by name; throws on anything malformed. */
export function decodeOutputs(answer: Answer): Map<string, DecodedOutput> {
  const jsonEnd = answer.headerLength ?? answer.body.length;
  if (!Number.isInteger(jsonEnd) || jsonEnd < 0 || jsonEnd > answer.body.length) {
    throw new Error('inference header length out of range');
  }
  const header = JSON.parse(answer.body.subarray(0, jsonEnd).toString('utf8')) as {
    outputs?: {
      name?: unknown;
      shape?: unknown;
      datatype?: unknown;
      data?: unknown;
      parameters?: Record<string, unknown>;
    }[];
  };
  if (!Array.isArray(header.outputs)) throw new Error('response has no outputs');
  const out = new Map<string, DecodedOutput>();
  let offset = jsonEnd;
  for (const o of header.outputs) {
    const name = String(o.name);
    const shape = Array.isArray(o.shape) ? o.shape.map(Number) : [];
    const datatype = String(o.datatype);
    const size = o.parameters?.binary_data_size;
    if (typeof size === 'number') {
      if (offset + size > answer.body.length) throw new Error(`binary data of ${name} runs past the body`);
      const bytes = answer.body.subarray(offset, offset + size);
      offset += size;
      const reader = numericReaders[datatype];
      if (reader) {
        const [width, read] = reader;
        const values: number[] = [];
        for (let p = 0; p + width <= bytes.length; p += width) values.push(read(bytes, p));
        out.set(name, { shape, datatype, values });
      } else {
        out.set(name, { shape, datatype, values: Buffer.from(bytes) });
      }
    } else {
      const flat = flatten(o.data, []);
      if (numericReaders[datatype]) out.set(name, { shape, datatype, values: flat.map(toNumber) });
      else out.set(name, { shape, datatype, values: Buffer.from(JSON.stringify(flat)) });
    }
  }
  return out;
}

/** |a − b| within `tolerance` absolutely or relative to the larger magnitude. */
export function close(a: number, b: number, tolerance: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (a === b) return true;
  const diff = Math.abs(a - b);
  return diff <= tolerance || diff <= tolerance * Math.max(Math.abs(a), Math.abs(b));
}

/**
 * Element by element, how the shadow's numbers moved against the primary's on the same request:
 * `up`/`down` beyond the tolerance, or `same`; and, given a decision threshold (a classifier's
 * `evaluation.threshold`), whether the decision held (`agree`) or flipped to positive
 * (`flipUp`) or to negative (`flipDown`). The shadow analysis tests these counts for a shift.
 */
export interface OutputMoves {
  up: number;
  down: number;
  same: number;
  agree: number;
  flipUp: number;
  flipDown: number;
}

export interface ComparisonDetail {
  result: Comparison;
  /** Present when both answers decoded to numeric outputs of the same shape. */
  moves?: OutputMoves;
}

/** Compares a shadow's answer with the primary's. A failing shadow is an `error`, not a disagreement. */
export function compareAnswers(primary: Answer, shadow: Answer, tolerance: number): Comparison {
  return compareOutputs(primary, shadow, tolerance).result;
}

/** compareAnswers with the element moves the shadow's output-shift test needs. */
export function compareOutputs(
  primary: Answer,
  shadow: Answer,
  tolerance: number,
  threshold?: number,
): ComparisonDetail {
  const result = compareDecoded(primary, shadow, tolerance);
  if (typeof result !== 'object') return { result };
  const moves: OutputMoves = { up: 0, down: 0, same: 0, agree: 0, flipUp: 0, flipDown: 0 };
  for (const [po, so] of result.pairs) {
    for (let i = 0; i < po.length; i++) {
      const a = po[i] as number;
      const b = so[i] as number;
      if (close(a, b, tolerance)) moves.same++;
      else if (b > a) moves.up++;
      else if (b < a) moves.down++;
      if (threshold !== undefined) {
        const pa = a >= threshold;
        const pb = b >= threshold;
        if (pa === pb) moves.agree++;
        else if (pb) moves.flipUp++;
        else moves.flipDown++;
      }
    }
  }
  return { result: result.result, moves };
}

/** The comparison, plus the numeric output pairs it compared when there were any. */
function compareDecoded(
  primary: Answer,
  shadow: Answer,
  tolerance: number,
): Comparison | { result: Comparison; pairs: [number[], number[]][] } {
  const pOk = primary.status >= 200 && primary.status < 300;
  const sOk = shadow.status >= 200 && shadow.status < 300;
  if (!sOk && shadow.status >= 500) return 'error';
  if (!pOk || !sOk) return primary.status === shadow.status ? 'agree' : 'disagree';
  let p: Map<string, DecodedOutput>;
  let s: Map<string, DecodedOutput>;
  try {
    p = decodeOutputs(primary);
  } catch {
    // The primary's answer is not something we can read: the client got it as is; nothing to compare.
    return primary.body.equals(shadow.body) ? 'agree' : 'disagree';
  }
  try {
    s = decodeOutputs(shadow);
  } catch {
    return 'error';
  }
  if (p.size !== s.size) return 'disagree';
  const pairs: [number[], number[]][] = [];
  let agree = true;
  for (const [name, po] of p) {
    const so = s.get(name);
    if (!so) return 'disagree';
    if (po.shape.length !== so.shape.length || po.shape.some((d, i) => d !== so.shape[i])) return 'disagree';
    if (Buffer.isBuffer(po.values) || Buffer.isBuffer(so.values)) {
      if (!Buffer.isBuffer(po.values) || !Buffer.isBuffer(so.values) || !po.values.equals(so.values))
        return 'disagree';
      continue;
    }
    if (po.values.length !== so.values.length) return 'disagree';
    pairs.push([po.values, so.values]);
    for (let i = 0; i < po.values.length && agree; i++) {
      if (!close(po.values[i]!, so.values[i]!, tolerance)) agree = false;
    }
  }
  return { result: agree ? 'agree' : 'disagree', pairs };
}

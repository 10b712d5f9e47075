/**
 * Tensor datatypes: the Open Inference Protocol names (`FP32`), onnxruntime's names (`float32`)
 * and the typed arrays that hold them. One table so every codec agrees.
 */
export type OipDatatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

export type OrtType =
  | 'bool'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'float16'
  | 'float32'
  | 'float64'
  | 'string';

export type NumericArray =
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

/** Tensor contents: a typed array for numeric/bool types, strings for BYTES. */
export type TensorData = NumericArray | string[];

/** A tensor as it travels between HTTP thread and session workers. */
export interface Tensor {
  type: OrtType;
  dims: number[];
  data: TensorData;
}

interface TypeInfo {
  ort: OrtType;
  /** Bytes per element in the binary tensor extension; 0 for BYTES (length-prefixed). */
  size: number;
  make: (n: number) => NumericArray;
  fromBuffer: (buf: ArrayBuffer, offset: number, n: number) => NumericArray;
  /** What JSON `data` elements must be. */
  json: 'number' | 'integer' | 'bigint' | 'boolean' | 'string';
}

const numeric = <T extends NumericArray>(
  ort: OrtType,
  size: number,
  ctor: { new (n: number): T; new (buf: ArrayBuffer, offset: number, n: number): T },
  json: TypeInfo['json'],
): TypeInfo => ({
  ort,
  size,
  make: (n) => new ctor(n),
  fromBuffer: (buf, offset, n) => new ctor(buf, offset, n),
  json,
});

export const DATATYPES: Record<OipDatatype, TypeInfo> = {
  BOOL: numeric('bool', 1, Uint8Array, 'boolean'),
  UINT8: numeric('uint8', 1, Uint8Array, 'integer'),
  UINT16: numeric('uint16', 2, Uint16Array, 'integer'),
  UINT32: numeric('uint32', 4, Uint32Array, 'integer'),
  UINT64: numeric('uint64', 8, BigUint64Array, 'bigint'),
  INT8: numeric('int8', 1, Int8Array, 'integer'),
  INT16: numeric('int16', 2, Int16Array, 'integer'),
  INT32: numeric('int32', 4, Int32Array, 'integer'),
  INT64: numeric('int64', 8, BigInt64Array, 'bigint'),
  // FP16 travels as raw half-precision bits; JSON values are converted (see toHalf).
  FP16: numeric('float16', 2, Uint16Array, 'number'),
  FP32: numeric('float32', 4, Float32Array, 'number'),
  FP64: numeric('float64', 8, Float64Array, 'number'),
  BYTES: {
    ort: 'string',
    size: 0,
    make: () => {
      throw new Error('BYTES tensors hold strings');
    },
    fromBuffer: () => {
      throw new Error('BYTES tensors hold strings');
    },
    json: 'string',
  },
};

const BY_ORT = new Map<string, OipDatatype>(
  (Object.entries(DATATYPES) as [OipDatatype, TypeInfo][]).map(([oip, t]) => [t.ort, oip]),
);

export function isOipDatatype(s: string): s is OipDatatype {
  return Object.prototype.hasOwnProperty.call(DATATYPES, s);
}

/** OIP name of an onnxruntime type, or undefined for types OIP cannot carry. */
export function oipFromOrt(t: string): OipDatatype | undefined {
  return BY_ORT.get(t);
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** IEEE 754 binary16 bits of a number (round to nearest even), for FP16 given as JSON. */
export function toHalf(value: number): number {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  e = half;
  return sign | e;
}

/** The number a binary16 bit pattern encodes, for FP16 outputs returned as JSON. */
export function fromHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

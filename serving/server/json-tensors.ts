/**
 * A fast path for large JSON tensors. JSON.parse builds one heap number per element and a JS
 * array per nesting level: for a 3×48×192 image (27 648 numbers, about 530 kB as a client prints
 * float32 values) that is most of the request's cost. Here the request is tokenized once without
 * building values; each `inputs[i].data` that is a (nested) array of numbers is cut out, and only
 * the rest, a few hundred bytes, goes to JSON.parse. FP32 data is then read straight from the
 * bytes into a Float32Array, each element equal to what JSON.parse followed by a Float32Array
 * store gives (checked per element; the rare one near a float32 rounding boundary is re-read by
 * Number()). Other datatypes, anything unusual (strings, booleans, deep nesting, malformed
 * numbers) and small bodies take the ordinary path, so errors read exactly as before.
 */

/** Bodies below this size are parsed whole: the fast path pays off on large tensors only. */
export const FAST_PATH_MIN_BYTES = 32 * 1024;
const MAX_DEPTH = 32;

/** `inputs[i].data` cut out of the body: read as FP32 already, parsed anew for another datatype. */
export class DeferredData {
  constructor(
    private readonly body: Buffer,
    readonly start: number,
    readonly end: number,
    /** The elements read as FP32 (JSON numbers in nested arrays only, so this always exists). */
    readonly float32: Float32Array,
  ) {}

  /** What JSON.parse would have returned for this value. */
  parse(): unknown {
    return JSON.parse(this.body.toString('utf8', this.start, this.end));
  }
}

export interface SplitRequest {
  /** The request JSON with every deferred data array replaced by `null`. */
  skeleton: string;
  /** Deferred `data` by input index. */
  data: Map<number, DeferredData>;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const COMMA = 0x2c;

interface Frame {
  array: boolean;
  /** Objects: the last key read. Arrays: unused. */
  key: string | undefined;
  /** Objects: the next string is a key. */
  expectKey: boolean;
  /** Arrays: index of the current element. */
  index: number;
}

/**
 * Splits a JSON infer request into a small skeleton and its large `inputs[i].data` arrays.
 * Undefined when the body is not worth it or not shaped as expected (the caller parses it whole).
 */
export function splitInferRequest(
  body: Buffer,
  end: number,
  minBytes = FAST_PATH_MIN_BYTES,
): SplitRequest | undefined {
  if (end < minBytes) return undefined;
  const stack: Frame[] = [];
  const data = new Map<number, DeferredData>();
  const parts: string[] = [];
  let copied = 0;
  let p = 0;
  while (p < end) {
    const c = body[p]!;
    if (c === QUOTE) {
      const s = p + 1;
      p = s;
      while (p < end && body[p] !== QUOTE) p += body[p] === BACKSLASH ? 2 : 1;
      if (p >= end) return undefined;
      const top = stack[stack.length - 1];
      if (top && !top.array && top.expectKey) {
        top.key = body.toString('utf8', s, p);
        top.expectKey = false;
      }
      p++;
      continue;
    }
    if (c === OPEN_OBJ || c === OPEN_ARR) {
      const top = stack[stack.length - 1];
      if (
        c === OPEN_ARR &&
        stack.length === 3 &&
        stack[0]!.key === 'inputs' &&
        stack[1]!.array &&
        top &&
        !top.array &&
        top.key === 'data'
      ) {
        // Read as FP32 in the same pass: large tensors are FP32 nearly always (others re-parse).
        const read = scanFloat32Array(body, p, end);
        if (read) {
          data.set(stack[1]!.index, new DeferredData(body, p, read.end, read.values));
          parts.push(body.toString('utf8', copied, p), 'null');
          copied = read.end;
          p = read.end;
          continue;
        }
      }
      if (stack.length > MAX_DEPTH + 4) return undefined;
      // A repeated "inputs" key: JSON.parse keeps the last one, and so do we.
      if (c === OPEN_ARR && stack.length === 1 && top?.key === 'inputs') data.clear();
      stack.push({ array: c === OPEN_ARR, key: undefined, expectKey: c === OPEN_OBJ, index: 0 });
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      if (!stack.pop()) return undefined;
    } else if (c === COMMA) {
      const top = stack[stack.length - 1];
      if (!top) return undefined;
      if (top.array) top.index++;
      else top.expectKey = true;
    }
    p++;
  }
  if (data.size === 0) return undefined;
  parts.push(body.toString('utf8', copied, end));
  return { skeleton: parts.join(''), data };
}

const POW10 = Float64Array.from({ length: 31 }, (_, i) => 10 ** i);
/** Integers below this are exact in a double, and one that was rounded is not below it. */
const EXACT = 2 ** 53;
/** Relative error bound of the approximate read (mantissa above 2^53 or exponent above 22). */
const SLACK = 4e-15;
/** Significant digits beyond this take Number(): the approximate read's bound assumes fewer. */
const MAX_DIGITS = 40;

/** Reused between requests (the HTTP thread reads one body at a time): no 1 MB zeroed per call. */
let scratch = new Float32Array(64 * 1024);

/*
 * Digit runs are read four bytes at a time (SWAR): the serial multiply-add per digit is the
 * scanner's cost on 17-digit float32 prints, and one 32-bit read converts four digits with a
 * handful of independent integer operations. digitRun() leaves its result in these two.
 */
let runValue = 0;
let runDigits = 0;

/** Index of the lowest byte of `w` that is not an ASCII digit, 4 when all four are. */
function digitsInWord(w: number): number {
  const t = (w - 0x30303030) | 0;
  // A byte is a digit when t's byte is below 10: neither its top bit nor that of t + 0x76 is set.
  // Borrows and carries only run upward, past the first non-digit, so that byte reads true.
  const bad = (t | ((t + 0x76767676) | 0)) & 0x80808080;
  return bad === 0 ? 4 : (31 - Math.clz32(bad & -bad)) >> 3;
}

/** The number the four digit bytes of `w` spell (first digit in the low byte). */
function wordValue(w: number): number {
  const x = (w - 0x30303030) | 0;
  const pairs = (Math.imul(x, 10) + (x >>> 8)) | 0; // bytes 0 and 2: two-digit values
  return (pairs & 0xff) * 100 + ((pairs >>> 16) & 0xff);
}

/**
 * Reads the run of digits at `p` (up to `limit`) into `acc`: runValue = acc·10^k + digits (a
 * double, exact while below 2^53), runDigits = k. Returns the index after the run.
 */
function digitRun(buf: Buffer, view: DataView, p: number, limit: number, acc: number): number {
  let k = 0;
  while (p + 4 <= limit) {
    const w = view.getUint32(p, true);
    const n = digitsInWord(w);
    if (n === 4) {
      acc = acc * 10000 + wordValue(w);
      p += 4;
      k += 4;
      continue;
    }
    if (n > 0) {
      // Shift the n digits to the top bytes: the lower ones become leading zeros.
      acc = acc * POW10[n]! + wordValue((((w << (8 * (4 - n))) | 0) + (0x30303030 >>> (8 * n))) | 0);
      p += n;
      k += n;
    }
    runValue = acc;
    runDigits = k;
    return p;
  }
  for (; p < limit; p++) {
    const d = buf[p]! - 0x30;
    if (d < 0 || d > 9) break;
    acc = acc * 10 + d;
    k++;
  }
  runValue = acc;
  runDigits = k;
  return p;
}

/**
 * Reads the (nested) JSON array of numbers that starts at `start` (a `[`) into float32,
 * validating the JSON grammar as it goes; `end` is one past its `]`. Undefined on anything else
 * (a string, true, an object, a malformed number, deeper than 32 levels, no closing bracket), so
 * the caller falls back to JSON.parse.
 *
 * Each element equals Math.fround(JSON.parse(number)). A mantissa below 2^53 with a power of
 * ten of at most 22 is Clinger's fast path: both operands are exact doubles, so one multiply or
 * divide is the correctly rounded double, as JSON.parse gives. Otherwise (float32 values printed
 * in full have 16–17 digits) the double is within SLACK of the true one, and the float32 is taken
 * when both ends of that interval round to it; one near a float32 rounding boundary, and any
 * exponent beyond ±30, is re-read by Number().
 */
export function scanFloat32Array(
  buf: Buffer,
  start: number,
  limit: number,
): { values: Float32Array; end: number } | undefined {
  // Every element takes at least two bytes ("1,"), so this bounds the count.
  const bound = Math.ceil((limit - start) / 2);
  if (scratch.length < bound) scratch = new Float32Array(Math.max(bound, scratch.length * 2));
  const out = scratch;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let n = 0;
  let depth = 0;
  /** After `[` or `,`: a value must come (or `]` right after `[`). */
  let wantValue = true;
  let justOpened = false;
  let p = start;
  if (buf[p] !== OPEN_ARR) return undefined;
  while (p < limit) {
    let c = buf[p]!;
    if (c === COMMA) {
      if (wantValue) return undefined;
      wantValue = true;
      justOpened = false;
      c = buf[++p]!;
      // The common case, "1,2": straight to the next number.
      if (!((c >= 0x30 && c <= 0x39) || c === 0x2d)) continue;
    } else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      p++;
      continue;
    } else if (c === OPEN_ARR) {
      if (!wantValue || depth >= MAX_DEPTH) return undefined;
      depth++;
      justOpened = true;
      p++;
      continue;
    } else if (c === CLOSE_ARR) {
      if (wantValue && !justOpened) return undefined; // "[1,]"
      depth--;
      wantValue = false;
      justOpened = false;
      p++;
      if (depth === 0) break;
      continue;
    }
    if (!wantValue || depth === 0) return undefined; // "[1 2]", or a value outside the array
    // A number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
    const s0 = p;
    let negative = false;
    if (c === 0x2d) {
      negative = true;
      c = buf[++p]!;
    }
    if (c === 0x30) {
      p++;
      const next = buf[p]! - 0x30;
      if (next >= 0 && next <= 9) return undefined; // leading zero
      runValue = 0;
      runDigits = 1;
    } else {
      p = digitRun(buf, view, p, limit, 0);
      if (runDigits === 0) return undefined;
    }
    let mant = runValue;
    let digits = runDigits;
    let exp = 0;
    if (buf[p] === 0x2e && p < limit) {
      // Leading fraction zeros add digits but no value: the count is only a bound.
      p = digitRun(buf, view, p + 1, limit, mant);
      if (runDigits === 0) return undefined;
      mant = runValue;
      digits += runDigits;
      exp = -runDigits;
    }
    c = buf[p]!;
    if ((c === 0x65 || c === 0x45) && p < limit) {
      c = buf[++p]!;
      let es = 1;
      if (c === 0x2d) {
        es = -1;
        c = buf[++p]!;
      } else if (c === 0x2b) c = buf[++p]!;
      let d = c - 0x30;
      if (d < 0 || d > 9 || p >= limit) return undefined;
      let e = 0;
      while (d >= 0 && d <= 9 && p < limit) {
        if (e < 1e6) e = e * 10 + d;
        d = buf[++p]! - 0x30;
      }
      exp += es * e;
    }
    if (p > limit) return undefined;
    let v: number;
    if (mant === 0) v = 0;
    else if (mant < EXACT && exp >= -22 && exp <= 22) {
      v = exp < 0 ? mant / POW10[-exp]! : mant * POW10[exp]!;
    } else if (exp >= -30 && exp <= 30 && digits <= MAX_DIGITS) {
      v = exp < 0 ? mant / POW10[-exp]! : mant * POW10[exp]!;
      const f = Math.fround(v);
      if (Math.fround(v * (1 - SLACK)) !== f || Math.fround(v * (1 + SLACK)) !== f)
        v = Math.abs(Number(buf.toString('latin1', s0, p)));
    } else v = Math.abs(Number(buf.toString('latin1', s0, p)));
    out[n++] = negative ? -v : v;
    wantValue = false;
    justOpened = false;
  }
  if (depth !== 0) return undefined;
  // An exact-sized copy: its buffer is transferred to a session worker.
  return { values: out.slice(0, n), end: p };
}

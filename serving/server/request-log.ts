/**
 * Inference request log: a sampled share of requests, one structured line each. Inputs are
 * personal data more often than not (a fraud model's features are a customer's transaction), so
 * by default a line carries each input's name, datatype, shape and a short sha256 of its bytes —
 * enough to match a complaint to a request, never the values. Failed requests are always eligible
 * but rate-limited, so a flood of bad requests cannot flood the log.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../common/log';
import type { Tensor } from './datatypes';

export interface RequestLogOptions {
  /** Model name and version, on every line so a grep for one model finds its requests. */
  model: string;
  version: string;
  /** Share of successful requests logged, 0..1 (0: none). */
  sample: number;
  /** Log input values (the first `maxValues` of each) instead of their digest. */
  inputs: boolean;
  /** Failed requests logged per second at most; the rest are counted on the next line. */
  errorsPerSecond?: number;
  maxValues?: number;
  /** Called once per decision that produced or suppressed a line (metrics). */
  count?: (outcome: 'logged' | 'suppressed') => void;
}

export interface LoggedTensor {
  name: string;
  datatype: string;
  tensor: Tensor;
}

export interface RequestRecord {
  id?: string;
  status: number;
  ms: number;
  rows: number;
  /** From describeInputs(), taken before the tensors leave for a session worker. */
  inputs?: Record<string, unknown>[];
  outputs?: { name: string; datatype: string; shape: number[] }[];
  error?: string;
}

/** First 16 hex digits of the sha256 of a tensor's bytes (strings: length-prefixed UTF-8). */
export function tensorDigest(t: Tensor): string {
  const h = createHash('sha256');
  if (Array.isArray(t.data)) {
    for (const s of t.data) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      h.update(len).update(b);
    }
  } else {
    const d = t.data;
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest('hex').slice(0, 16);
}

export class RequestLog {
  private readonly errorsPerSecond: number;
  private readonly maxValues: number;
  private windowStart = 0;
  private errorsInWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly opts: RequestLogOptions,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {
    this.errorsPerSecond = opts.errorsPerSecond ?? 10;
    this.maxValues = opts.maxValues ?? 64;
  }

  /** Decided before any digest is computed: the hot path pays one random number. */
  wants(status: number): boolean {
    if (status < 400) return this.opts.sample > 0 && this.random() < this.opts.sample;
    const t = this.now();
    if (t - this.windowStart >= 1000) {
      this.windowStart = t;
      this.errorsInWindow = 0;
    }
    if (this.errorsInWindow >= this.errorsPerSecond) {
      this.suppressed++;
      this.opts.count?.('suppressed');
      return false;
    }
    this.errorsInWindow++;
    return true;
  }

  write(r: RequestRecord): void {
    const fields: Record<string, unknown> = {
      model: this.opts.model,
      version: this.opts.version,
      id: r.id,
      status: r.status,
      ms: Math.round(r.ms * 1000) / 1000,
      rows: r.rows,
    };
    if (r.inputs) fields.inputs = r.inputs;
    if (r.outputs) fields.outputs = r.outputs;
    if (r.error !== undefined) fields.error = r.error;
    if (r.status >= 400 && this.suppressed > 0) {
      fields.suppressed = this.suppressed;
      this.suppressed = 0;
    }
    this.opts.count?.('logged');
    if (r.status >= 500) this.log.warn('inference', fields);
    else this.log.info('inference', fields);
  }

  describeInputs(inputs: LoggedTensor[]): Record<string, unknown>[] {
    return inputs.map((i) => this.describe(i));
  }

  private describe(i: LoggedTensor): Record<string, unknown> {
    const base = { name: i.name, datatype: i.datatype, shape: i.tensor.dims };
    if (!this.opts.inputs) return { ...base, sha256: tensorDigest(i.tensor) };
    const all = Array.isArray(i.tensor.data)
      ? i.tensor.data
      : Array.from(i.tensor.data as ArrayLike<number | bigint>, String);
    const values = all.slice(0, this.maxValues);
    return all.length > values.length ? { ...base, values, of: all.length } : { ...base, values };
  }
}

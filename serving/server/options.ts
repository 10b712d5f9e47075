/** Options of one model server; the CLI flags of `runway serve` map onto these one to one. */
import { z } from 'zod';

export const serverOptionsSchema = z.object({
  /** Path of the .onnx file. */
  model: z.string().min(1),
  /** Model name in the API (`/v2/models/{name}`). */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" or "-"'),
  version: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" or "-"')
    .default('1'),
  host: z.string().default('127.0.0.1'),
  /** 0 picks a free port; the bound URL is returned. */
  port: z.number().int().min(0).max(65535).default(8000),
  /**
   * Port of the OIP gRPC service (`inference.GRPCInferenceService`); 0 picks a free one, unset
   * serves HTTP only. Messages are limited by maxBodyBytes like HTTP bodies.
   */
  grpcPort: z.number().int().min(0).max(65535).optional(),
  /** Address the gRPC service binds; default: host. */
  grpcHost: z.string().optional(),
  /** PEM certificate chain and private key files: the gRPC service speaks TLS (both or neither). */
  grpcTlsCert: z.string().min(1).optional(),
  grpcTlsKey: z.string().min(1).optional(),
  maxBatchSize: z.number().int().min(1).max(65536).default(32),
  preferredBatchSizes: z.array(z.number().int().min(1)).default([8, 16]),
  maxQueueDelayMs: z.number().min(0).max(60_000).default(2),
  maxQueueSize: z.number().int().min(1).default(1024),
  /**
   * Wait the full queue delay for a fuller batch even when nothing else is on its way (Triton's
   * behaviour). Off by default: a lone request is then dispatched at once instead of idling.
   */
  strictQueueDelay: z.boolean().default(false),
  instances: z.number().int().min(1).max(64).default(1),
  device: z.enum(['cpu', 'cuda']).default('cpu'),
  /** intraOpNumThreads per instance; default: the machine's cores divided among instances. */
  threads: z.number().int().min(1).max(256).optional(),
  /**
   * Let onnxruntime's idle threads spin-wait for the next piece of work (its own default) instead
   * of sleeping: a lone request starts sooner, but the spinning takes the cores that the HTTP
   * thread and the clients need. On 2 shared cores (bench:overload, heavy model, 2 threads) it
   * cost 11% of the closed-loop capacity and 10 points of goodput at 3× overload. Off by default;
   * on for dedicated cores serving one request at a time.
   */
  spinWait: z.boolean().default(false),
  /** When set, the artifact must have this digest or the server refuses to start. */
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, '64 hex digits')
    .optional(),
  /** Largest accepted request body. */
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .default(64 * 1024 * 1024),
  /** Default queue timeout for requests that set none; 0 means none. */
  requestTimeoutMs: z.number().min(0).default(0),
  /** Share of successful inference requests logged (0..1); failures are logged rate-limited. */
  requestLogSample: z.number().min(0, 'expected 0..1').max(1, 'expected 0..1').default(0.01),
  /** Bins for the drift histograms (JSON or a file of it; serving/server/drift.ts); none: no histograms. */
  driftReference: z.string().min(1).optional(),
  /** Log input values in request lines; off by default: inputs appear as a sha256 digest only. */
  requestLogInputs: z.boolean().default(false),
  /** Where server logs go (tests capture them); default stderr. Not a CLI flag. */
  logSink: z.custom<(line: string) => void>((v) => typeof v === 'function').optional(),
});

export type ModelServerOptions = z.input<typeof serverOptionsSchema>;
export type ResolvedServerOptions = z.output<typeof serverOptionsSchema>;

const flagName = (key: string): string => '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** Validates options, naming the flag in the error (`--max-batch-size: ...`). */
export function resolveServerOptions(options: ModelServerOptions): ResolvedServerOptions {
  const parsed = serverOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${flagName(String(issue.path[0] ?? 'options'))}: ${issue.message}`);
  }
  const o = parsed.data;
  if ((o.grpcTlsCert === undefined) !== (o.grpcTlsKey === undefined)) {
    throw new Error('--grpc-tls-cert and --grpc-tls-key: give both (PEM files) or neither');
  }
  if (o.grpcTlsCert !== undefined && o.grpcPort === undefined) {
    throw new Error('--grpc-tls-cert: gRPC is off; set --grpc-port too');
  }
  return o;
}

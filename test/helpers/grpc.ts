/**
 * A grpc-js client of the OIP service for tests: each call resolves with the answer or with the
 * error's code, details and trailers (never rejects), so a test asserts on either.
 */
import * as grpc from '@grpc/grpc-js';
import { oipService } from '../../serving/server/grpc-messages';

export type GrpcOutcome<T> =
  | { ok: true; value: T; metadata: grpc.Metadata }
  | { ok: false; code: grpc.status; details: string; metadata: grpc.Metadata };

export interface OipClient {
  call<T = Record<string, unknown>>(
    method: string,
    request: unknown,
    metadata?: Record<string, string>,
  ): Promise<GrpcOutcome<T>>;
  close(): void;
}

type UnaryMethod<T> = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, value?: T) => void,
) => grpc.ClientUnaryCall;

const Client = grpc.makeGenericClientConstructor(oipService(), 'GRPCInferenceService');

export function oipClient(
  address: string,
  credentials = grpc.credentials.createInsecure(),
  options: grpc.ClientOptions = {},
): OipClient {
  const client = new Client(address, credentials, {
    'grpc.max_send_message_length': -1,
    'grpc.max_receive_message_length': -1,
    ...options,
  });
  return {
    call<T>(method: string, request: unknown, metadata: Record<string, string> = {}) {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      return new Promise<GrpcOutcome<T>>((resolve) => {
        let headers = new grpc.Metadata();
        const methods = client as unknown as Record<string, UnaryMethod<T>>;
        const c = methods[method]!.call(
          client,
          request,
          md,
          { deadline: Date.now() + 30_000 },
          (err, value) => {
            if (err)
              resolve({ ok: false, code: err.code, details: err.details, metadata: err.metadata ?? headers });
            else resolve({ ok: true, value: value as T, metadata: headers });
          },
        );
        c.on('metadata', (m: grpc.Metadata) => (headers = m));
      });
    },
    close: () => client.close(),
  };
}

/** Raw little-endian bytes of a Float32Array, as raw_input_contents carries them. */
export const rawFloats = (values: number[]): Buffer => Buffer.from(Float32Array.from(values).buffer);

/** The FP32 values of a raw_output_contents entry. */
export const floatsOf = (raw: Buffer): number[] =>
  Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));

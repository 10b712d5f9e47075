/**
 * The model server's OIP gRPC service (`inference.GRPCInferenceService` on @grpc/grpc-js).
 * It is a second door onto the same core as HTTP: one admission (drain, queue limit), one
 * batcher, one set of metrics, statistics and request log. Errors carry the gRPC code that
 * matches the HTTP status (400 → INVALID_ARGUMENT, 404 → NOT_FOUND, 503 → UNAVAILABLE,
 * 500 → INTERNAL), and the HTTP status itself in the `x-runway-status` trailer, so the router
 * can tell a server's answer from a connection that failed.
 */
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/log';
import type { ParsedRequest } from './request';
import { InferenceError } from './errors';
import { oipService, type ModelInferRequest, type ModelInferResponse } from './grpc-messages';
import { encodeGrpcInferResponse, parseGrpcInferRequest } from './grpc-request';
import type { NamedTensor } from './protocol';
import type { Signature, TensorSpec } from './signature';

/** Trailer with the HTTP status a runway server's gRPC error corresponds to. */
export const STATUS_METADATA = 'x-runway-status';

const CODE_OF_STATUS: Record<number, grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  404: grpc.status.NOT_FOUND,
  500: grpc.status.INTERNAL,
  // The router's own failures: no answer from a replica, or none in time.
  502: grpc.status.UNAVAILABLE,
  503: grpc.status.UNAVAILABLE,
  504: grpc.status.DEADLINE_EXCEEDED,
};

/** The gRPC code of an HTTP status, as the model server maps its errors. */
export function grpcCodeOf(status: number): grpc.status {
  return CODE_OF_STATUS[status] ?? (status >= 500 ? grpc.status.INTERNAL : grpc.status.INVALID_ARGUMENT);
}

/** The HTTP status class a gRPC code counts as (router metrics, shadow comparison). */
export function httpStatusOf(code: grpc.status): number {
  switch (code) {
    case grpc.status.OK:
      return 200;
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.OUT_OF_RANGE:
    case grpc.status.FAILED_PRECONDITION:
    case grpc.status.RESOURCE_EXHAUSTED: // an oversized message: HTTP answers an oversized body 400
      return 400;
    case grpc.status.UNAUTHENTICATED:
      return 401;
    case grpc.status.PERMISSION_DENIED:
      return 403;
    case grpc.status.NOT_FOUND:
    case grpc.status.UNIMPLEMENTED:
      return 404;
    case grpc.status.UNAVAILABLE:
      return 503;
    case grpc.status.DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

export function serviceError(status: number, message: string): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set(STATUS_METADATA, String(status));
  return { code: grpcCodeOf(status), details: message, metadata };
}

/** What the gRPC door needs from the server core (server.ts builds it). */
export interface GrpcCore<E extends { byName: Map<string, NamedTensor> }> {
  name: string;
  version: string;
  signature: Signature;
  maxBatchSize: number;
  ready(): boolean;
  serverMetadata: { name: string; version: string; extensions: string[] };
  platform: string;
  admit(): void;
  release(): void;
  execute(parsed: ParsedRequest): Promise<E>;
  succeeded(parsed: ParsedRequest, done: E, t0: bigint): void;
  failed(err: unknown, t0: bigint, rows: number): { status: number; message: string };
  log: Logger;
}

export interface GrpcOptions {
  host: string;
  port: number;
  /** Largest request message accepted (RESOURCE_EXHAUSTED beyond). */
  maxMessageBytes: number;
  tls?: { certFile: string; keyFile: string };
}

export interface GrpcService {
  /** `host:port` to dial. */
  address: string;
  port: number;
  tls: boolean;
  /** Stops accepting calls, lets running ones finish (cut after `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

const tensorMetadata = (t: TensorSpec): { name: string; datatype: string; shape: number[] } => ({
  name: t.name,
  datatype: t.datatype,
  shape: t.shape,
});

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

export async function startGrpcService<E extends { byName: Map<string, NamedTensor> }>(
  core: GrpcCore<E>,
  o: GrpcOptions,
): Promise<GrpcService> {
  /** Unknown models and versions are NOT_FOUND, with the same words as HTTP's 404. */
  const checkModel = (name: string, version: string): void => {
    if (name !== core.name)
      throw new InferenceError(404, `unknown model "${name}"; this server serves "${core.name}"`);
    if (version !== '' && version !== core.version) {
      throw new InferenceError(
        404,
        `unknown version "${version}" of model "${name}"; served: "${core.version}"`,
      );
    }
  };
  /** A handler that throws answers with the matching status instead of crashing the call. */
  const guard =
    <Req, Res>(fn: (req: Req) => Res): Unary<Req, Res> =>
    (call, callback) => {
      try {
        callback(null, fn(call.request));
      } catch (err) {
        const status = err instanceof InferenceError ? err.status : 500;
        callback(serviceError(status, (err as Error).message));
      }
    };

  const modelInfer: Unary<ModelInferRequest, ModelInferResponse> = (call, callback) => {
    const t0 = process.hrtime.bigint();
    let rows = 0;
    let admitted = false;
    void (async () => {
      try {
        const req = call.request;
        checkModel(req.model_name, req.model_version);
        core.admit();
        admitted = true;
        const parsed = parseGrpcInferRequest(req, core.signature, { maxBatchSize: core.maxBatchSize });
        rows = parsed.rows;
        const done = await core.execute(parsed);
        const response = encodeGrpcInferResponse(
          core.name,
          core.version,
          parsed.id,
          parsed.outputs.map((out) => ({ name: out.name, tensor: done.byName.get(out.name)!.tensor })),
        );
        callback(null, response);
        core.succeeded(parsed, done, t0);
      } catch (err) {
        const { status, message } = core.failed(err, t0, rows);
        callback(serviceError(status, message));
      } finally {
        if (admitted) core.release();
      }
    })();
  };

  const implementation: grpc.UntypedServiceImplementation = {
    ServerLive: guard(() => ({ live: true })),
    ServerReady: guard(() => ({ ready: core.ready() })),
    ModelReady: guard((req: { name: string; version: string }) => {
      checkModel(req.name, req.version);
      return { ready: core.ready() };
    }),
    ServerMetadata: guard(() => core.serverMetadata),
    ModelMetadata: guard((req: { name: string; version: string }) => {
      checkModel(req.name, req.version);
      return {
        name: core.name,
        versions: [core.version],
        platform: core.platform,
        inputs: core.signature.inputs.map(tensorMetadata),
        outputs: core.signature.outputs.map(tensorMetadata),
      };
    }),
    ModelInfer: modelInfer,
  };

  const server = new grpc.Server({
    'grpc.max_receive_message_length': o.maxMessageBytes,
    'grpc.max_send_message_length': -1,
  });
  server.addService(oipService(), implementation);
  let credentials = grpc.ServerCredentials.createInsecure();
  if (o.tls) {
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = fs.readFileSync(o.tls.certFile);
      key = fs.readFileSync(o.tls.keyFile);
    } catch (err) {
      throw new Error(`--grpc-tls-cert/--grpc-tls-key: ${(err as Error).message}`);
    }
    credentials = grpc.ServerCredentials.createSsl(null, [{ cert_chain: cert, private_key: key }], false);
  }
  const host = o.host.includes(':') && !o.host.startsWith('[') ? `[${o.host}]` : o.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${o.port}`, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
  ).catch((err: unknown) => {
    throw new Error(`cannot listen for gRPC on ${host}:${o.port}: ${(err as Error).message}`);
  });

  let closing: Promise<void> | undefined;
  return {
    address: `${host}:${port}`,
    port,
    tls: o.tls !== undefined,
    close(graceMs = 5_000): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        const cut = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(cut);
          resolve();
        });
      });
      return closing;
    },
  };
}

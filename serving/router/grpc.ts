/**
 * The router's gRPC front door: `inference.GRPCInferenceService` in front of the same route
 * table as HTTP. Model-scoped calls (ModelInfer, ModelReady, ModelMetadata) pick a variant by
 * weight or by the sticky unit in the request metadata (the route's sticky header, default
 * `x-runway-unit`), fail over when an attempt produced no answer, and count per variant in the
 * same series as HTTP, so the analysis sees gRPC traffic. ModelInfer is mirrored to the shadow
 * and its request id and unit are remembered for feedback. Requests and answers pass through as
 * protobuf bytes; only the model name and id are read from the request, and answers are decoded
 * only to compare a shadow's.
 */
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/log';
import { httpStatusOf, serviceError, STATUS_METADATA } from '../server/grpc';
import { oipService, type ModelInferResponse } from '../server/grpc-messages';
import { type AccessGate, CREDENTIAL_HEADERS, presentedKey } from './access';
import { type ActiveRoute, type ActiveVariant, failoverTarget, previewTarget } from './active';
import { stickyPoint, variantAt } from './assign';
import { type AssignmentMemory } from './assignments';
import { type Answer, compareOutputs } from './compare';
import { type Endpoint, pickEndpoint, saturatedMessage } from './endpoints';
import { errorReason, failingStatus } from './failures';
import { grpcUpstream, NoGrpcError, type RawResult } from './grpc-upstream';
import { codeClass, type RouterMetrics } from './metrics';

export const GRPC_VARIANT_METADATA = 'x-runway-variant';
export const GRPC_SHADOW_METADATA = 'x-runway-shadow';

export interface GrpcFrontDoorOptions {
  host: string;
  port: number;
  /** Largest request message accepted (RESOURCE_EXHAUSTED beyond). */
  maxMessageBytes: number;
  timeoutMs: number;
  tolerance: number;
  table: ReadonlyMap<string, ActiveRoute>;
  metrics: RouterMetrics;
  memory: AssignmentMemory;
  /** API keys and rate limits (metadata `authorization: Bearer <key>` or `x-api-key`); unset: open. */
  gate?: AccessGate;
  /** A free mirror slot (shared with HTTP), or false when the bound is reached. */
  takeMirrorSlot(): boolean;
  releaseMirrorSlot(): void;
  log: Logger;
}

export interface GrpcFrontDoor {
  address: string;
  port: number;
  close(): Promise<void>;
}

const SERVICE_PATH = '/inference.GRPCInferenceService/';
/** Calls about one model: field 1 of each request is the model name. */
const MODEL_METHODS = new Set(['ModelInfer', 'ModelReady', 'ModelMetadata']);
/** Metadata the transport owns; everything else travels to the replica. */
const RESERVED = /^(grpc-|:)|^(user-agent|content-type|te|host)$/;

/** Reads a varint at `pos`: [value, next position], or undefined past the end. */
function varint(buf: Buffer, pos: number): [number, number] | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) return undefined;
    const b = buf[pos++]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return [value, pos];
    scale *= 128;
  }
  return undefined;
}

/**
 * The top-level string fields `wanted` of a protobuf message, read without decoding the rest
 * (tensor bytes are skipped by their length). Undefined when the bytes are not a valid message.
 */
export function topLevelStrings(buf: Buffer, wanted: readonly number[]): Map<number, string> | undefined {
  const out = new Map<number, string>();
  let pos = 0;
  while (pos < buf.length) {
    const tag = varint(buf, pos);
    if (!tag) return undefined;
    pos = tag[1];
    const field = Math.floor(tag[0] / 8);
    switch (tag[0] % 8) {
      case 0: {
        const v = varint(buf, pos);
        if (!v) return undefined;
        pos = v[1];
        break;
      }
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = varint(buf, pos);
        if (!len || len[1] + len[0] > buf.length) return undefined;
        if (wanted.includes(field)) out.set(field, buf.toString('utf8', len[1], len[1] + len[0]));
        pos = len[1] + len[0];
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        return undefined;
    }
    if (pos > buf.length) return undefined;
  }
  return out;
}

/** A gRPC answer in the form compareAnswers reads (the HTTP binary tensor layout). */
function asAnswer(result: RawResult): Answer {
  if (!result.ok) {
    return { status: statusOfError(result.error), body: Buffer.from(result.error.details ?? '') };
  }
  const decoded = oipService().ModelInfer!.responseDeserialize(result.body) as ModelInferResponse;
  const raw = decoded.raw_output_contents;
  const outputs = decoded.outputs.map((o, i) => {
    const base = { name: o.name, datatype: o.datatype, shape: o.shape.map(Number) };
    if (raw[i]) return { ...base, parameters: { binary_data_size: raw[i].length } };
    const c = o.contents ?? {};
    const data = Object.values(c).find((v) => Array.isArray(v) && v.length > 0) ?? [];
    return { ...base, data: (data as unknown[]).map((v) => (typeof v === 'string' ? Number(v) : v)) };
  });
  const header = Buffer.from(JSON.stringify({ outputs }));
  return { status: 200, headerLength: header.length, body: Buffer.concat([header, ...raw]) };
}

/** The HTTP status of a replica's error: its own trailer when it sent one, else by code. */
function statusOfError(err: grpc.ServiceError): number {
  const sent = Number(err.metadata?.get(STATUS_METADATA)[0]);
  return Number.isInteger(sent) && sent > 0 ? sent : httpStatusOf(err.code);
}

/** The front door's refusals, as gRPC says them. */
const ACCESS_CODES: Record<401 | 403 | 429, grpc.status> = {
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  429: grpc.status.RESOURCE_EXHAUSTED,
};

/** Errors without a replica's status trailer that mean no answer came back (the connection failed). */
const TRANSPORT_CODES = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.CANCELLED,
  grpc.status.UNKNOWN,
  grpc.status.INTERNAL,
]);

export async function startGrpcFrontDoor(o: GrpcFrontDoorOptions): Promise<GrpcFrontDoor> {
  const { metrics, memory, log, table } = o;

  const reply = (
    call: grpc.ServerUnaryCall<Buffer, Buffer>,
    callback: grpc.sendUnaryData<Buffer>,
    variant: string | undefined,
    result: RawResult,
  ): void => {
    if (variant !== undefined) {
      const md = new grpc.Metadata();
      md.set(GRPC_VARIANT_METADATA, variant);
      call.sendMetadata(md);
    }
    if (result.ok) {
      callback(null, result.body);
      return;
    }
    const trailers = result.error.metadata?.clone() ?? new grpc.Metadata();
    callback({ code: result.error.code, details: result.error.details, metadata: trailers });
  };

  const failWith = (status: number, message: string): RawResult => {
    const err = serviceError(status, message);
    return {
      ok: false,
      error: Object.assign(new Error(message), {
        code: err.code!,
        details: message,
        metadata: err.metadata!,
      }) as grpc.ServiceError,
    };
  };

  function forward(method: string): grpc.handleUnaryCall<Buffer, Buffer> {
    const path = SERVICE_PATH + method;
    const isInfer = method === 'ModelInfer';
    return (call, callback) => {
      void (async () => {
        const started = performance.now();
        const fields = topLevelStrings(call.request, isInfer ? [1, 3] : [1]);
        const model = fields?.get(1) ?? '';
        if (!fields || model === '') {
          reply(
            call,
            callback,
            undefined,
            failWith(
              400,
              fields
                ? 'the request names no model (field model_name / name is empty)'
                : 'malformed request message',
            ),
          );
          return;
        }
        const active = table.get(model);
        if (o.gate) {
          const verdict = o.gate.admit(
            presentedKey(call.metadata.get('authorization')[0], call.metadata.get('x-api-key')[0]),
            model,
            !!active,
          );
          if (!verdict.ok) {
            const trailers = new grpc.Metadata();
            if (verdict.retryAfterS !== undefined) trailers.set('retry-after', String(verdict.retryAfterS));
            callback({ code: ACCESS_CODES[verdict.status], details: verdict.message, metadata: trailers });
            return;
          }
        }
        if (!active) {
          reply(call, callback, undefined, failWith(404, `no route for model "${model}"`));
          return;
        }
        const unit = call.metadata.get(active.stickyHeader)[0];
        const unitValue = typeof unit === 'string' && unit !== '' ? unit : undefined;
        const preview = active.preview
          ? previewTarget(active, call.metadata.get(active.preview.header)[0])
          : undefined;
        const point = unitValue !== undefined ? stickyPoint(unitValue) : Math.random() * 100;
        let variant: ActiveVariant = preview ?? active.variants.get(variantAt(active.boundaries, point)!)!;
        const finish = (status: number): void => {
          variant.instruments.requests[codeClass(status)].inc();
          variant.instruments.duration.observe((performance.now() - started) / 1000);
        };
        const mirrorTo =
          isInfer && !preview && active.mirror && Math.random() * 100 < active.mirror.percent
            ? active.mirror
            : undefined;
        const metadata = call.metadata.clone();
        for (const key of Object.keys(metadata.getMap())) if (RESERVED.test(key)) metadata.remove(key);
        if (o.gate) for (const key of CREDENTIAL_HEADERS) metadata.remove(key);

        let tried: Set<Endpoint> | undefined;
        let endpoint = pickEndpoint(variant.endpoints, variant.next++);
        let result: RawResult | undefined;
        for (;;) {
          let failure: { reason: string; status: number; message: string };
          if (!endpoint) {
            failure = {
              reason: 'no_endpoint',
              status: 503,
              message: `variant "${variant.name}" of model "${model}" has no healthy endpoint`,
            };
          } else if (endpoint.full()) {
            // As over HTTP: refused at once, no ejection, no failover (saturatedMessage).
            metrics.upstreamErrors.inc({ model, variant: variant.name, reason: 'saturated' });
            finish(503);
            reply(
              call,
              callback,
              variant.name,
              failWith(503, saturatedMessage(variant.name, model, endpoint.maxInFlight)),
            );
            return;
          } else {
            const upstream = grpcUpstream(endpoint, o.timeoutMs);
            endpoint.outstanding++;
            let attempt: RawResult | { thrown: unknown };
            try {
              attempt = await upstream.call(path, call.request, metadata, o.timeoutMs);
            } catch (err) {
              attempt = { thrown: err };
            }
            endpoint.outstanding--;
            if ('thrown' in attempt) {
              const err = attempt.thrown;
              const { reason, status } =
                err instanceof NoGrpcError ? { reason: 'no_grpc', status: 502 } : errorReason(err);
              failure = {
                reason,
                status,
                message: `variant "${variant.name}" of model "${model}" failed: ${reason} (${(err as Error).message})`,
              };
            } else if (attempt.ok || attempt.error.metadata?.get(STATUS_METADATA).length) {
              result = attempt; // the replica answered (an error it chose is an answer too)
              break;
            } else if (attempt.error.code === grpc.status.DEADLINE_EXCEEDED) {
              failure = {
                reason: 'timeout',
                status: 504,
                message: `variant "${variant.name}" of model "${model}" did not answer within ${o.timeoutMs} ms`,
              };
            } else if (TRANSPORT_CODES.has(attempt.error.code)) {
              upstream.reset();
              failure = {
                reason: 'reset',
                status: 502,
                message: `variant "${variant.name}" of model "${model}" failed: reset (${attempt.error.details})`,
              };
            } else {
              result = attempt; // e.g. RESOURCE_EXHAUSTED from the replica's own message limit
              break;
            }
          }
          if (endpoint) {
            endpoint.failed();
            (tried ??= new Set()).add(endpoint);
          }
          log.debug('upstream failed', { model, variant: variant.name, reason: failure.reason, grpc: true });
          metrics.upstreamErrors.inc({ model, variant: variant.name, reason: failure.reason });
          // The failed attempt counts against its variant, as over HTTP.
          finish(failure.status);
          const next =
            failure.reason !== 'timeout' && failure.reason !== 'other' && (tried?.size ?? 0) < 3
              ? failoverTarget(active, variant, tried ?? new Set())
              : undefined;
          if (!next) {
            reply(call, callback, variant.name, failWith(failure.status, failure.message));
            return;
          }
          metrics.failovers.inc({ model, from: variant.name, to: next.variant.name, reason: failure.reason });
          variant = next.variant;
          endpoint = next.endpoint;
        }
        const status = result.ok ? 200 : statusOfError(result.error);
        if (failingStatus(status)) endpoint!.failed();
        else endpoint!.succeeded();
        // Feedback may name this request by its id or its unit: one reward each (serving/router/feedback.ts).
        let id: string | undefined;
        if (isInfer) {
          const idHeader = call.metadata.get('x-request-id')[0];
          id = typeof idHeader === 'string' && idHeader !== '' ? idHeader : fields.get(3) || undefined;
        }
        memory.served(model, id, unitValue, variant.name);
        reply(call, callback, variant.name, result);
        finish(status);
        if (mirrorTo) shadow(model, mirrorTo.variant, path, call.request, metadata, result, mirrorTo);
      })().catch((err: unknown) => {
        log.error('gRPC call failed', { err });
        callback({ code: grpc.status.INTERNAL, details: `router error: ${(err as Error).message}` });
      });
    };
  }

  function shadow(
    model: string,
    target: ActiveVariant,
    path: string,
    body: Buffer,
    metadata: grpc.Metadata,
    primary: RawResult,
    mirror: { tolerance?: number; threshold?: number },
  ): void {
    const labels = { model, variant: target.name };
    if (!o.takeMirrorSlot()) {
      metrics.mirrorDropped.inc(labels);
      return;
    }
    metrics.mirrored.inc(labels);
    const endpoint = pickEndpoint(target.endpoints, target.next++);
    if (!endpoint) {
      o.releaseMirrorSlot();
      metrics.upstreamErrors.inc({ ...labels, reason: 'no_endpoint' });
      metrics.shadowComparisons.inc({ ...labels, result: 'error' });
      return;
    }
    endpoint.outstanding++;
    const started = performance.now();
    const md = metadata.clone();
    md.set(GRPC_SHADOW_METADATA, '1');
    grpcUpstream(endpoint, o.timeoutMs)
      .call(path, body, md, o.timeoutMs)
      .then((r) => {
        metrics.shadowDuration.observe(labels, (performance.now() - started) / 1000);
        const answer = asAnswer(r);
        if (failingStatus(answer.status)) endpoint.failed();
        else endpoint.succeeded();
        // The same comparison as HTTP's, moves and decisions included, so a shadow fed over gRPC
        // is judged by the output-shift test too.
        metrics.countShadow(
          labels,
          compareOutputs(asAnswer(primary), answer, mirror.tolerance ?? o.tolerance, mirror.threshold),
        );
      })
      .catch((err: unknown) => {
        endpoint.failed();
        metrics.shadowDuration.observe(labels, (performance.now() - started) / 1000);
        metrics.upstreamErrors.inc({
          ...labels,
          reason: err instanceof NoGrpcError ? 'no_grpc' : errorReason(err).reason,
        });
        metrics.shadowComparisons.inc({ ...labels, result: 'error' });
      })
      .finally(() => {
        o.releaseMirrorSlot();
        endpoint.outstanding--;
      });
  }

  // Model-scoped methods take and answer raw bytes; the server-wide ones are answered here.
  const base = oipService();
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(base)) {
    if (MODEL_METHODS.has(name)) {
      definition[name] = {
        ...method,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: unknown) => b as Buffer,
      };
      implementation[name] = forward(name);
    } else definition[name] = method;
  }
  const local =
    (answer: () => unknown): grpc.handleUnaryCall<unknown, unknown> =>
    (_call, callback) =>
      callback(null, answer());
  implementation.ServerLive = local(() => ({ live: true }));
  implementation.ServerReady = local(() => ({ ready: true }));
  implementation.ServerMetadata = local(() => ({
    name: 'runway-router',
    version: '0.1.0',
    extensions: ['binary_tensor_data'],
  }));

  const server = new grpc.Server({
    'grpc.max_receive_message_length': o.maxMessageBytes,
    'grpc.max_send_message_length': -1,
  });
  server.addService(definition as grpc.ServiceDefinition, implementation);
  const host = o.host.includes(':') && !o.host.startsWith('[') ? `[${o.host}]` : o.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${o.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  ).catch((err: unknown) => {
    throw new Error(`cannot listen for gRPC on ${host}:${o.port}: ${(err as Error).message}`);
  });
  let closing: Promise<void> | undefined;
  return {
    address: `${host}:${port}`,
    port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        const cut = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(cut);
          resolve();
        });
      });
      return closing;
    },
  };
}

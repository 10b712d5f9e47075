/**
 * The router's gRPC side of an upstream endpoint. Routes name replicas by their HTTP base URL;
 * a runway model server says in its HTTP server metadata (`GET /v2` → `grpc_port`) where its
 * gRPC service listens, so the router asks once per endpoint, dials that port on the same host,
 * and asks again after the connection fails (a restarted replica may have a new port).
 * Messages pass through as bytes: the router never decodes a tensor to forward it.
 */
import * as grpc from '@grpc/grpc-js';
import type { Endpoint } from './endpoints';

/** Why an endpoint has no gRPC door to dial (its reason label in the metrics). */
export class NoGrpcError extends Error {
  readonly code = 'NO_GRPC';
}

const identity = (b: Buffer): Buffer => b;

export type RawResult = { ok: true; body: Buffer } | { ok: false; error: grpc.ServiceError };

export class GrpcUpstream {
  private client?: Promise<grpc.Client>;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly discoverTimeoutMs: number,
  ) {}

  private async discover(): Promise<grpc.Client> {
    const res = await this.endpoint.pool.request({
      path: '/v2',
      method: 'GET',
      headersTimeout: this.discoverTimeoutMs,
      bodyTimeout: this.discoverTimeoutMs,
    });
    const text = await res.body.text();
    let port: unknown;
    try {
      port = (JSON.parse(text) as { grpc_port?: unknown }).grpc_port;
    } catch {
      port = undefined;
    }
    if (res.statusCode !== 200 || typeof port !== 'number' || !Number.isInteger(port)) {
      throw new NoGrpcError(
        `${this.endpoint.url} serves no gRPC (its GET /v2 names no grpc_port; start it with runway serve --grpc-port)`,
      );
    }
    const host = new URL(this.endpoint.url).hostname;
    // Bodies pass through whole: the router's own receive limit has already bounded the request.
    return new grpc.Client(`${host}:${port}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
  }

  /** The connected client, discovering the port on first use. */
  get(): Promise<grpc.Client> {
    if (!this.client) {
      const pending = this.discover();
      this.client = pending;
      pending.catch(() => {
        if (this.client === pending) this.client = undefined;
      });
    }
    return this.client;
  }

  /** Forget the client (after a failed connection): the next call asks the replica again. */
  reset(): void {
    const old = this.client;
    this.client = undefined;
    void old?.then((c) => c.close()).catch(() => undefined);
  }

  close(): void {
    this.reset();
  }

  /** One unary call with the request and answer as raw protobuf bytes. */
  async call(method: string, body: Buffer, metadata: grpc.Metadata, timeoutMs: number): Promise<RawResult> {
    const client = await this.get();
    return new Promise<RawResult>((resolve) => {
      client.makeUnaryRequest(
        method,
        identity,
        identity,
        body,
        metadata,
        { deadline: Date.now() + timeoutMs },
        (err, value) =>
          resolve(err ? { ok: false, error: err } : { ok: true, body: value ?? Buffer.alloc(0) }),
      );
    });
  }
}

const upstreams = new WeakMap<Endpoint, GrpcUpstream>();

/** The endpoint's gRPC side, created on first use; closed with the endpoint. */
export function grpcUpstream(endpoint: Endpoint, discoverTimeoutMs: number): GrpcUpstream {
  let u = upstreams.get(endpoint);
  if (!u) {
    u = new GrpcUpstream(endpoint, discoverTimeoutMs);
    upstreams.set(endpoint, u);
    endpoint.extras.push(u);
  }
  return u;
}

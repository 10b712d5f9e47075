/**
 * A small client for MLflow's REST API (2.x and 3.x tracking servers): JSON calls under
 * `/api/2.0/mlflow/` and the artifact proxy under `/api/2.0/mlflow-artifacts/`, with the failures
 * sorted into the three kinds the registry activities treat differently: passing (unreachable,
 * 5xx: retried), refused credentials (permanent, names the settings), and MLflow's own errors.
 */
import type { Readable } from 'node:stream';
import { request } from 'undici';
import { RegistryUnavailableError } from './registry';

export interface MlflowCredentials {
  /** HTTP basic auth, as MLflow's basic-auth app expects (MLFLOW_TRACKING_USERNAME/PASSWORD). */
  username?: string;
  password?: string;
  /** A bearer token (MLFLOW_TRACKING_TOKEN), for servers behind an authenticating proxy. */
  token?: string;
}

/** An error MLflow answered with: `code` is its error_code (RESOURCE_DOES_NOT_EXIST, ...). */
export class MlflowApiError extends Error {
  override name = 'MlflowApiError';
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

export class MlflowAuthError extends Error {
  override name = 'MlflowAuthError';
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export class MlflowClient {
  readonly url: string;
  private readonly authorization?: string;

  constructor(
    trackingUri: string,
    credentials: MlflowCredentials = {},
    private readonly timeoutMs = 30_000,
  ) {
    this.url = trackingUri.replace(/\/+$/, '');
    if (credentials.token) this.authorization = `Bearer ${credentials.token}`;
    else if (credentials.username !== undefined) {
      const pair = `${credentials.username}:${credentials.password ?? ''}`;
      this.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
    }
  }

  /** A JSON call: `endpoint` is relative to /api/2.0/mlflow/ (e.g. `registered-models/get`). */
  async call<T>(
    method: Method,
    endpoint: string,
    args: { query?: Record<string, string | undefined>; body?: unknown } = {},
  ): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(args.query ?? {})) if (v !== undefined) qs.set(k, v);
    const target = `/api/2.0/mlflow/${endpoint}${qs.size ? `?${qs.toString()}` : ''}`;
    const res = await this.send(method, target, `${method} ${endpoint}`, {
      body: args.body === undefined ? undefined : JSON.stringify(args.body),
      headers: args.body === undefined ? {} : { 'content-type': 'application/json' },
    });
    const text = await res.body.text();
    try {
      return (text ? JSON.parse(text) : {}) as T;
    } catch {
      throw new MlflowApiError(
        `MLflow at ${this.url} answered ${method} ${endpoint} with something that is not JSON: ${text.slice(0, 200)}`,
        res.statusCode,
        'BAD_RESPONSE',
      );
    }
  }

  /** Streams an artifact from the tracking server's proxy (`mlflow-artifacts:` URIs). */
  async download(artifactPath: string): Promise<Readable> {
    const res = await this.send(
      'GET',
      `/api/2.0/mlflow-artifacts/artifacts/${encodePath(artifactPath)}`,
      `download mlflow-artifacts:/${artifactPath}`,
    );
    return res.body;
  }

  async upload(artifactPath: string, body: Readable, size: number): Promise<void> {
    const res = await this.send(
      'PUT',
      `/api/2.0/mlflow-artifacts/artifacts/${encodePath(artifactPath)}`,
      `upload mlflow-artifacts:/${artifactPath}`,
      { body, headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) } },
    );
    await res.body.dump();
  }

  /** Files directly under an artifact directory of the proxy. */
  async listArtifacts(dir: string): Promise<{ path: string; is_dir?: boolean; file_size?: number }[]> {
    const res = await this.send(
      'GET',
      `/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(dir)}`,
      `list mlflow-artifacts:/${dir}`,
    );
    const out = (await res.body.json()) as { files?: { path: string; is_dir?: boolean }[] };
    return out.files ?? [];
  }

  private async send(
    method: Method,
    target: string,
    what: string,
    opts: { body?: string | Readable; headers?: Record<string, string> } = {},
  ): Promise<Awaited<ReturnType<typeof request>>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (this.authorization) headers.authorization = this.authorization;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${this.url}${target}`, {
        method,
        headers,
        body: opts.body,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new RegistryUnavailableError(
        `MLflow tracking server at ${this.url} is unreachable (${e.code ?? e.message}) for ${what}; ` +
          'the registry call is retried: start the server again (or fix registry.mlflow.trackingUri)',
      );
    }
    if (res.statusCode < 400) return res;
    const text = await res.body.text().catch(() => '');
    let code = 'HTTP_' + res.statusCode;
    let message = text.trim().slice(0, 300);
    try {
      const parsed = JSON.parse(text) as { error_code?: string; message?: string };
      code = parsed.error_code ?? code;
      message = parsed.message ?? message;
    } catch {
      // Not JSON: the basic-auth app and proxies answer plain text or HTML.
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new MlflowAuthError(
        `MLflow at ${this.url} refused runway's credentials for ${what} (${res.statusCode}: ${message || 'no message'}); ` +
          (this.authorization
            ? 'check registry.mlflow.username/password (or token) in the platform config'
            : 'the server wants credentials: set registry.mlflow.username/passwordFile (or tokenFile)'),
      );
    }
    if (res.statusCode >= 500 || res.statusCode === 429) {
      throw new RegistryUnavailableError(
        `MLflow at ${this.url} failed ${what} (${res.statusCode} ${code}: ${message}); the registry call is retried`,
      );
    }
    throw new MlflowApiError(`MLflow refused ${what}: ${code}: ${message}`, res.statusCode, code);
  }
}

function encodePath(p: string): string {
  return p
    .split('/')
    .filter((s) => s !== '')
    .map(encodeURIComponent)
    .join('/');
}

/** True for "that thing does not exist" answers, which MLflow gives with either code. */
export function isNotFound(err: unknown): boolean {
  return (
    err instanceof MlflowApiError &&
    (err.code === 'RESOURCE_DOES_NOT_EXIST' || err.status === 404 || /not found/i.test(err.message))
  );
}

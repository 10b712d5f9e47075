/**
 * The `builtin` TrafficRouter: turns the dial by calling the runway router's admin API. Errors say
 * what to do: an unreachable router names its URL and how to start one; a refused route carries
 * the router's own explanation (which field, what was expected).
 */
import { request } from 'undici';
import type { Route } from '../router/route';
import type { RouterCapabilities, TrafficRouter } from './router';

export interface BuiltinRouterOptions {
  /** Router base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  /** Admin bearer token (omit for an open loopback router). */
  token?: string;
  /** Per-call timeout (default 10 s). */
  timeoutMs?: number;
}

export class RouterAdminError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RouterAdminError';
  }
}

export class BuiltinTrafficRouter implements TrafficRouter {
  readonly kind = 'builtin';
  readonly capabilities: RouterCapabilities = {
    weights: true,
    mirror: true,
    sticky: true,
    feedback: true,
    preview: true,
  };
  private readonly base: string;

  constructor(private readonly options: BuiltinRouterOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  async setRoute(model: string, route: Route): Promise<void> {
    await this.call('PUT', model, route);
  }

  async getRoute(model: string): Promise<Route | undefined> {
    const res = await this.call('GET', model, undefined, [404]);
    return res.status === 404 ? undefined : (res.body as Route);
  }

  async deleteRoute(model: string): Promise<void> {
    await this.call('DELETE', model);
  }

  /** All routes the router holds. */
  async listRoutes(): Promise<Record<string, Route>> {
    const res = await this.call('GET', undefined);
    return (res.body as { routes: Record<string, Route> }).routes;
  }

  private async call(
    method: 'GET' | 'PUT' | 'DELETE',
    model: string | undefined,
    body?: unknown,
    tolerated: number[] = [],
  ): Promise<{ status: number; body: unknown }> {
    const url = `${this.base}/admin/routes${model === undefined ? '' : `/${encodeURIComponent(model)}`}`;
    const timeout = this.options.timeoutMs ?? 10_000;
    let res;
    try {
      res = await request(url, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
    } catch (err) {
      throw new RouterAdminError(
        `runway router unreachable at ${this.base} (${(err as Error).message}); start it with \`runway up\` or \`runway router\``,
      );
    }
    const text = await res.body.text();
    let parsed: unknown = undefined;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return { status: res.statusCode, body: parsed };
    if (tolerated.includes(res.statusCode)) return { status: res.statusCode, body: parsed };
    const reason =
      parsed && typeof parsed === 'object' && 'error' in parsed
        ? String((parsed as { error: unknown }).error)
        : text;
    if (res.statusCode === 401) {
      throw new RouterAdminError(`runway router at ${this.base} refused the admin token: ${reason}`, 401);
    }
    throw new RouterAdminError(
      `runway router ${method} ${model ?? 'routes'} failed (${res.statusCode}): ${reason}`,
      res.statusCode,
    );
  }
}

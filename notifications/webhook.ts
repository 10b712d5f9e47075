/**
 * One webhook delivery: POST with a timeout per attempt, retried with exponential backoff on
 * network errors, timeouts, 429 and 5xx, within an overall deadline, then given up and reported.
 * It never throws: a dead endpoint must not fail or stall the promotion that notifies (a rollback
 * above all). The URL is a secret (Slack and Teams put the credential in it): it never appears
 * in a result, an error or a log line; the webhook's name does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

export interface WebhookTarget {
  name: string;
  url: string;
}

export interface RetryPolicy {
  /** Per attempt: connect, headers and body (ms). */
  timeoutMs: number;
  /** Attempts in all, the first included. */
  attempts: number;
  /** Wait before the second attempt (ms); doubles each time, capped at maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
}

export interface Delivery {
  webhook: string;
  ok: boolean;
  attempts: number;
  /** HTTP status of the last answer, when there was one. */
  status?: number;
  /** Why it was not delivered (redacted), when it was not. */
  error?: string;
  ms: number;
}

/** Replaces every form of the secret URL in a message (whole, without scheme, path and query). */
export function redact(text: string, url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    /* not a URL: hide the string itself */
  }
  const secrets = [url];
  if (parsed) {
    secrets.push(parsed.href, `${parsed.host}${parsed.pathname}${parsed.search}`);
    if (parsed.pathname.length > 1) secrets.push(parsed.pathname + parsed.search, parsed.pathname);
    if (parsed.search.length > 1) secrets.push(parsed.search);
    if (parsed.password) secrets.push(parsed.password);
  }
  let out = text;
  // Longest first, so a shorter form never leaves part of a longer one behind.
  for (const s of [...new Set(secrets)].sort((a, b) => b.length - a.length)) {
    if (s) out = out.split(s).join('[redacted]');
  }
  return out;
}

const retryable = (status: number): boolean => status === 429 || status === 408 || status >= 500;

/** Retry-After in seconds (the form webhook services send), when it fits; else undefined. */
function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const seconds = value === undefined ? NaN : Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (
      err.name === 'TimeoutError' ||
      code === 'UND_ERR_HEADERS_TIMEOUT' ||
      code === 'UND_ERR_BODY_TIMEOUT'
    ) {
      return 'timed out';
    }
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

export async function deliver(
  target: WebhookTarget,
  body: string,
  headers: Record<string, string>,
  policy: RetryPolicy,
  /** Absolute time (Date.now()) after which no attempt starts and a running one is abandoned. */
  deadline: number,
  signal?: AbortSignal,
): Promise<Delivery> {
  const started = Date.now();
  let attempts = 0;
  let status: number | undefined;
  let error = 'not attempted: no time left before the deadline';
  for (let n = 1; n <= policy.attempts; n++) {
    const left = deadline - Date.now();
    if (left <= 0 || signal?.aborted) break;
    attempts = n;
    let waitHint: number | undefined;
    try {
      const timeout = Math.min(policy.timeoutMs, left);
      const res = await request(target.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'runway-notify/1', ...headers },
        body,
        signal: signal
          ? AbortSignal.any([signal, AbortSignal.timeout(timeout)])
          : AbortSignal.timeout(timeout),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      status = res.statusCode;
      // Read (and bound) the answer: it says why a 4xx was refused; keep the socket reusable.
      const answer = (await res.body.text()).slice(0, 200);
      if (status >= 200 && status < 300) {
        return { webhook: target.name, ok: true, attempts, status, ms: Date.now() - started };
      }
      error = `HTTP ${status}${answer ? `: ${answer.trim()}` : ''}`;
      if (!retryable(status)) break;
      waitHint = retryAfterMs(res.headers['retry-after']);
    } catch (err) {
      status = undefined;
      error = signal?.aborted ? 'cancelled' : describe(err);
    }
    if (n === policy.attempts) break;
    const backoff = Math.min(policy.backoffMs * 2 ** (n - 1), policy.maxBackoffMs);
    // Jitter (±20%) so many workers retrying one endpoint do not arrive in step.
    const wait = Math.max(waitHint ?? 0, backoff * (0.8 + 0.4 * Math.random()));
    if (Date.now() + wait >= deadline) break;
    try {
      await sleep(wait, undefined, { signal });
    } catch {
      error = 'cancelled';
      break;
    }
  }
  return {
    webhook: target.name,
    ok: false,
    attempts,
    ...(status !== undefined ? { status } : {}),
    error: redact(error, target.url),
    ms: Date.now() - started,
  };
}

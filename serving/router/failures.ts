import { UPSTREAM_CODES } from './upstream';

/** How an upstream attempt failed: the reason label in the metrics and the status the client gets. */
export function errorReason(err: unknown): { reason: string; status: number } {
  const code = (err as { code?: string }).code ?? '';
  if (code === UPSTREAM_CODES.headersTimeout || code === UPSTREAM_CODES.bodyTimeout) {
    return { reason: 'timeout', status: 504 };
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'EAI_AGAIN') {
    return { reason: 'connect', status: 502 };
  }
  if (code === UPSTREAM_CODES.closed || code === 'ECONNRESET' || code === 'EPIPE')
    return { reason: 'reset', status: 502 };
  if (code === UPSTREAM_CODES.protocol) return { reason: 'protocol', status: 502 };
  return { reason: 'other', status: 502 };
}

/** Statuses that say the replica itself is broken (not the client, not deliberate load shedding). */
export const failingStatus = (s: number): boolean => s === 500 || s === 502 || s === 504;

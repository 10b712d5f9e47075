/** How an upstream attempt failed: the reason label in the metrics and the status the client gets. */
export function errorReason(err: unknown): { reason: string; status: number } {
  const code = (err as { code?: string }).code ?? '';
  if (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return { reason: 'timeout', status: 504 };
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'EAI_AGAIN') {
    return { reason: 'connect', status: 502 };
  }
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE')
    return { reason: 'reset', status: 502 };
  if (code.startsWith('HPE_') || code === 'UND_ERR_INFO' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
    return { reason: 'protocol', status: 502 };
  }
  return { reason: 'other', status: 502 };
}

/** Statuses that say the replica itself is broken (not the client, not deliberate load shedding). */
export const failingStatus = (s: number): boolean => s === 500 || s === 502 || s === 504;

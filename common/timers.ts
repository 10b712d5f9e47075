/** One `sleep` for the whole code base (workflow code uses the SDK's own). */
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Resolves after `ms`. When `signal` aborts first it rejects with the signal's reason (an
 * activity's cancellation, a stop request), so callers see why they were woken.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    throw err;
  }
}

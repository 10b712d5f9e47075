/**
 * Durations as people write them in specs: `500ms`, `30s`, `15m`, `24h`, `7d`, or combined `1h30m`.
 * Pure (no Node built-ins) so workflow code may use it too.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** Milliseconds for a duration string; throws with the accepted forms when it cannot parse. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (!DURATION_PATTERN.test(trimmed)) {
    throw new Error(
      `"${text}" is not a duration; expected a number with a unit ms|s|m|h|d, e.g. 30s, 15m, 1h30m`,
    );
  }
  let total = 0;
  for (const match of trimmed.matchAll(PART)) total += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? NaN);
  return Math.round(total);
}

/** Compact human form for logs and status: 90000 → `1m30s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}

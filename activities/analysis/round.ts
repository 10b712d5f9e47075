/**
 * Numbers in verdicts, rounded to six significant digits so a history reads 0.0123457 rather than
 * 0.012345678901234. Null, NaN and infinities pass through unchanged.
 */
export function round(x: number, digits?: number): number;
export function round(x: number | null, digits?: number): number | null;
export function round(x: number | null, digits = 6): number | null {
  return x === null || !Number.isFinite(x) ? x : Number(x.toPrecision(digits));
}

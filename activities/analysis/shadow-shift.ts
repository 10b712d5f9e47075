/**
 * Has the candidate's output moved? In the shadow both variants answer the same requests, so the
 * comparison is paired: of the output elements that moved beyond the tolerance, how many moved up
 * and how many down, and of the decisions at the classifier's threshold, how many flipped to
 * positive and how many to negative. A candidate whose predictions are merely different moves
 * both ways; one whose predictions have shifted moves one way. Under "no shift beyond maxShift"
 * each moved element goes up with probability at most 1/2 + maxShift (and down likewise), so the
 * sign-test e-processes of eprocess.ts apply with a constant null share: cumulative counts since
 * the shadow began are enough, and any number of looks keeps the level.
 */
import { emptyCell, logMean, logMixture, UPWARD_TILTS, updateCell } from './eprocess';

export interface ShadowEvidence {
  kind: 'shadow';
  looks: number;
  up: number;
  down: number;
  flipUp: number;
  flipDown: number;
  /** Largest log e-value so far; past log(1/α) the shadow has failed. */
  maxLog: number;
  crossedAt?: number;
}

export interface ShadowMoves {
  up: number;
  down: number;
  flipUp: number;
  flipDown: number;
}

export function addShadowMoves(
  ev: ShadowEvidence | undefined,
  m: ShadowMoves,
  maxShift: number,
  alpha: number,
): ShadowEvidence {
  const next: ShadowEvidence = {
    kind: 'shadow',
    looks: (ev?.looks ?? 0) + 1,
    up: (ev?.up ?? 0) + m.up,
    down: (ev?.down ?? 0) + m.down,
    flipUp: (ev?.flipUp ?? 0) + m.flipUp,
    flipDown: (ev?.flipDown ?? 0) + m.flipDown,
    maxLog: ev?.maxLog ?? 0,
    ...(ev?.crossedAt !== undefined ? { crossedAt: ev.crossedAt } : {}),
  };
  const now = shiftLog(next, maxShift);
  next.maxLog = Math.max(next.maxLog, now);
  if (next.crossedAt === undefined && next.maxLog >= Math.log(1 / alpha)) next.crossedAt = next.looks;
  return next;
}

/** log e-value now: the average over the four one-sided sign tests (scores up/down, flips up/down). */
export function shiftLog(ev: ShadowEvidence, maxShift: number): number {
  if (maxShift >= 0.5) return 0;
  const top = 0.5 + maxShift;
  const one = (x: number, t: number): number =>
    logMixture(updateCell(emptyCell(UPWARD_TILTS), UPWARD_TILTS, x, t, top), UPWARD_TILTS);
  const moved = ev.up + ev.down;
  const flipped = ev.flipUp + ev.flipDown;
  return logMean([
    one(ev.up, moved),
    one(ev.down, moved),
    one(ev.flipUp, flipped),
    one(ev.flipDown, flipped),
  ]);
}

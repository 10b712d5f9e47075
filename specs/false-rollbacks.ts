/**
 * The false-rollback budget of a promotion, split across the phases that compare the candidate
 * with the baseline: every canary step below 100%, and the experiment when there is one. Each
 * phase's tests together get its share, so by the union bound a candidate as good as the baseline
 * is rolled back by the comparison with probability at most `falseRollbackRate` over the whole
 * promotion, however long each step runs and however often it is looked at.
 *
 * The shadow, when it runs, gets a tenth for its output-shift test. Of the rest, the first step gets half (with one step, all of it), the rest share the other half. The first
 * step is the smallest canary, where evidence is scarcest and a regression does the least harm to
 * catch; later steps see five to ten times the traffic, and evidence grows with traffic while the
 * cost of a smaller α grows only with its logarithm.
 */
export interface AlphaSplit {
  /** Per canary step (same order as spec steps); null for steps that do not compare (100%). */
  steps: (number | null)[];
  experiment: number | null;
  /** The shadow's output-shift test, when the shadow runs. */
  shadow: number | null;
}

/** The shadow's share: its shift test sees every mirrored request, so a tenth is plenty. */
const SHADOW_SHARE = 0.1;

export function splitFalseRollbackRate(
  rate: number,
  stepWeights: number[],
  experiment: boolean,
  shadow = false,
): AlphaSplit {
  if (!(rate > 0 && rate < 0.5)) throw new Error(`falseRollbackRate must be in (0, 0.5), got ${rate}`);
  const shadowAlpha = shadow ? rate * SHADOW_SHARE : null;
  rate -= shadowAlpha ?? 0;
  const comparing = stepWeights.map((w) => w < 100);
  const k = comparing.filter(Boolean).length + (experiment ? 1 : 0);
  const shares: number[] = [];
  for (let i = 0; i < k; i++) shares.push(k === 1 ? rate : i === 0 ? rate / 2 : rate / 2 / (k - 1));
  let next = 0;
  const steps = comparing.map((c) => (c ? (shares[next++] as number) : null));
  return { steps, experiment: experiment ? (shares[next] as number) : null, shadow: shadowAlpha };
}

/**
 * Step 9 (optional): a sticky A/B judged by an always-valid sequential test, or a Thompson-sampling
 * bandit that moves the weights each interval. Rewards are counted from the experiment's start;
 * the SLO guard keeps judging each interval on its own.
 */
import { log, patched } from '@temporalio/workflow';
import { formatDuration } from '../../specs/duration';
import type { Promotion } from './context';
import { Ended } from './state';
import { freshWindow, judge, look, rollOverIfLong, waitInterval } from './watch';

export async function experiment(p: Promotion): Promise<'done' | 'promote_full'> {
  const result = await decide(p);
  p.state.stage = 'graduate';
  return result;
}

async function decide(p: Promotion): Promise<'done' | 'promote_full'> {
  const { state } = p;
  const e = p.spec.experiment;
  p.enter(
    'experiment',
    e.kind === 'ab' ? `A/B at ${e.split}% by ${e.unitHeader}` : 'bandit (Thompson sampling)',
  );
  if (!state.experiment) {
    await p.setTraffic(
      p.split(e.kind === 'ab' ? e.split : 50),
      e.kind === 'ab' ? `A/B: ${e.split}% candidate, sticky by ${e.unitHeader}` : 'bandit: arms start even',
      undefined,
    );
    await freshWindow(p);
    state.experiment = { start: state.lastSnapshot, elapsedMs: 0 };
  }
  const exp = state.experiment;
  for (;;) {
    if ((await waitInterval(p, e.interval)) === 'promote_full') return 'promote_full';
    const result = await look(p, 'experiment');
    judge(p, result, 'experiment');
    const verdict = result.experiment;
    if (!state.paused) exp.elapsedMs += e.interval;
    if (verdict?.rewards) exp.rewards = verdict.rewards;
    // The router's counters reset (it restarted): keep what was counted up to the last good
    // look and count on from this look's snapshot, instead of losing the whole experiment.
    if (verdict?.sinceStartGap && patched('experiment-recounts-after-reset')) {
      exp.carry = exp.rewards ?? exp.carry;
      exp.start = result.snapshot;
    }
    if (verdict && e.kind === 'ab') {
      if (typeof verdict.pValue === 'number' && verdict.ci)
        exp.ab = { pValue: verdict.pValue, ci: verdict.ci };
      if (verdict.decision === 'candidate_wins') return 'done';
      if (verdict.decision === 'baseline_wins')
        throw new Ended('rejected', `the candidate lost the A/B: ${verdict.reason}`);
    }
    if (verdict && e.kind === 'bandit') {
      if (verdict.decision === 'stop') {
        if (verdict.best === p.candidate) return 'done';
        throw new Ended('rejected', `the bandit chose the baseline: ${verdict.reason}`);
      }
      const w = verdict.weights ?? {};
      const changed = Object.entries(w).some(([v, x]) => state.weights[v] !== x);
      if (changed && !state.paused) {
        await p.setTraffic(p.split(w[p.candidate] ?? 50), `bandit: ${verdict.reason}`, undefined);
      }
    }
    if (exp.elapsedMs >= e.maxDuration) {
      const why = `no decision within ${formatDuration(e.maxDuration)}${verdict ? `: ${verdict.reason}` : ''}`;
      if (e.onTimeout === 'proceed') {
        log.info(`experiment timed out, proceeding as the spec says (${why})`);
        return 'done';
      }
      throw new Ended('rejected', `experiment kept the baseline: ${why}`);
    }
    p.refreshDetails();
    await rollOverIfLong(p);
  }
}

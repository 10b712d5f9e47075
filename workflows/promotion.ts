/**
 * promotionWorkflow: carries one model version from evaluation to 100% of production traffic,
 * or back out again. It reads like the runbook a careful platform team follows by hand; each step
 * is a module in workflows/promotion/, and the carried state with its transitions is in state.ts.
 * The strategy (canary, linear, blue-green) only chooses the traffic steps (strategy.ts).
 *
 * From shadow on an SLO guard looks every interval (watch.ts); `failureLimit` consecutive
 * failures roll back. Any failure, rejection or cancellation runs the same non-cancellable
 * cleanup, so traffic never stays on a broken version. Every decision's numbers are activity
 * results in the history.
 *
 * Deterministic: no Node built-ins, no clocks but the SDK's. Changes that in-flight promotions
 * would replay go behind patched(); test/integration/replay.test.ts replays recorded histories.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  isCancellation,
  log,
  patched,
} from '@temporalio/workflow';
import type { PromotionInput, PromotionResult } from './api';
import { quick, run } from './activity-calls';
import { holdAfterGraduation, type Final } from './promotion/after-graduation';
import { approve } from './promotion/approve';
import { startWatch } from './promotion/bake';
import { cleanup } from './promotion/cleanup';
import { Promotion } from './promotion/context';
import { evaluate } from './promotion/evaluate';
import { experiment } from './promotion/experiment';
import { graduate } from './promotion/graduate';
import { installHandlers } from './promotion/handlers';
import { prepare } from './promotion/prepare';
import { deployToProduction } from './promotion/production';
import { shadow } from './promotion/shadow';
import { signedDecisions, verifyStart } from './promotion/signed';
import { stageAndTest } from './promotion/staging';
import { walkSteps } from './promotion/strategy';
import { Ended, failureReason, throwIfRollbackRequested } from './promotion/state';

export async function promotionWorkflow(input: PromotionInput): Promise<PromotionResult> {
  const p = new Promotion(input);
  installHandlers(p);
  try {
    await CancellationScope.cancellable(async () => {
      const prep = await prepare(p); // every run: artifacts verified, baseline known
      // approval.identity: signed: the start itself is a signed decision (it names the artifact).
      if (signedDecisions(p)) await verifyStart(p);
      if (p.at('evaluate')) await evaluate(p, prep); // 1
      if (p.at('approve')) await approve(p); // 2
      if (p.at('stage', 'integration')) await stageAndTest(p, prep); // 3, 4
      throwIfRollbackRequested(p.controls);
      await deployToProduction(p, prep);
      // A first release has nothing to compare against: straight to 100%.
      let skip = !prep.baseline;
      if (skip) log.info('no production version yet: first release goes straight to 100%');
      // Promote-full asked for before live traffic: graduate now (before this patch the first
      // canary step's route was set first, and only its hold saw the request).
      if (p.controls.promoteFull && patched('promote-full-before-traffic')) skip = true;
      if (!skip && p.at('shadow')) skip = (await shadow(p)) === 'promote_full'; // 5
      // 6–8: the strategy's steps (canary 5/25/50, linear's equal steps, or blue-green's switch)
      if (!skip && p.at('canary', 'linear', 'preview', 'switch'))
        skip = (await walkSteps(p)) === 'promote_full';
      if (!skip && p.at('experiment')) await experiment(p); // 9
      await graduate(p); // 10
    });
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    p.outcome =
      err instanceof Ended
        ? { outcome: err.outcome, reason: err.reason }
        : isCancellation(err)
          ? { outcome: 'cancelled', reason: 'cancelled' }
          : { outcome: 'failed', reason: failureReason(err) };
    const reason = p.outcome.reason;
    p.enter('rolling_back', reason);
    await CancellationScope.nonCancellable(() => cleanup(p, reason));
  }
  const final = await finish(p);
  await startWatch(p, final);
  await holdAfterGraduation(p, final);
  return result(p, final);
}

/** Records the outcome where the UI, search and the notifier see it. */
async function finish(p: Promotion): Promise<Final> {
  const { state } = p;
  const final: Final = p.outcome ?? { outcome: 'failed', reason: 'ended without an outcome' };
  state.stage = 'done';
  p.stagesEntered.push('done');
  state.pendingAction = undefined;
  p.recordOutcome(final, true);
  await CancellationScope.nonCancellable(() =>
    run('notify', `outcome ${final.outcome}`, quick, {
      model: p.model,
      version: p.version,
      event: `promotion_${final.outcome}`,
      message: final.reason,
      // The last stage reached (the worker counts promotions by it): input only, no new command.
      details: { weights: state.weights, stage: lastStage(p) },
      ...p.notifyRoute,
    }),
  );
  return final;
}

/** The last stage this run worked in, before the cleanup or the end. */
function lastStage(p: Promotion): string {
  const worked = p.stagesEntered.filter((s) => s !== 'rolling_back' && s !== 'done');
  return (
    worked.at(-1) ??
    (p.state.stage === 'done' || p.state.stage === 'rolling_back' ? 'unknown' : p.state.stage)
  );
}

function result(p: Promotion, final: Final): PromotionResult {
  const out: PromotionResult = {
    model: p.model,
    version: p.version,
    outcome: final.outcome,
    reason: final.reason,
    baselineVersion: p.baseline?.version,
    verdicts: p.verdicts,
    trafficChanges: p.state.trafficChanges,
    approvals: p.state.approvals,
  };
  if (final.outcome === 'failed') throw ApplicationFailure.nonRetryable(final.reason, 'PromotionFailed', out);
  return out;
}

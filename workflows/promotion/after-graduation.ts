/**
 * After graduation the old version keeps running for `rollback.scaleDownDelay`, ready for a fast
 * rollback: a rollback signal in this window swaps traffic back at once, no redeploy needed.
 * Then it scales down.
 */
import { CancellationScope, condition, patched } from '@temporalio/workflow';
import { formatDuration } from '../../specs/duration';
import { quick, run, slow } from '../activity-calls';
import { deploymentName } from '../deployments';
import { restoreVersion } from '../restore';
import type { Promotion } from './context';

export interface Final {
  outcome: NonNullable<Promotion['outcome']>['outcome'];
  reason: string;
}

export async function holdAfterGraduation(p: Promotion, final: Final): Promise<void> {
  const { spec, state, controls, model, version } = p;
  const base = p.baseline;
  if (final.outcome !== 'promoted' || !base) return;
  state.pendingAction = `previous v${base.version} scales down in ${formatDuration(spec.rollback.scaleDownDelay)}; rollback restores it at once`;
  p.refreshDetails();
  const rolledBack = await condition(() => !!controls.rollbackRequest, spec.rollback.scaleDownDelay);
  state.pendingAction = undefined;
  const request = controls.rollbackRequest;
  if (rolledBack && request) {
    const reason = `rollback after graduation by ${request.by}: ${request.reason}`;
    await CancellationScope.nonCancellable(async () => {
      state.stage = 'rolling_back';
      await restoreVersion(
        {
          route: (variants, why) => p.setTraffic(variants, why, undefined),
          registry: (summary, input) => run('updateRegistry', summary, quick, input),
          teardown: (summary, name) => run('teardown', summary, slow, { name }),
        },
        { model, to: base.version, from: version, reason },
      );
    });
    final.outcome = 'rolled_back';
    final.reason = reason;
    state.stage = 'done';
    p.recordOutcome(final);
    // The promotion already announced `promoted`; people hear it was undone (before this patch, not).
    if (patched('notify-rollback-after-graduation')) {
      await CancellationScope.nonCancellable(() =>
        run('notify', 'notify: rolled back after graduation', quick, {
          model,
          version,
          event: 'rollback_after_graduation',
          message: reason,
          details: { restored: base.version, by: request.by },
          ...p.notifyRoute,
        }),
      );
    }
  } else {
    await run('teardown', `scale down previous v${base.version}`, slow, {
      name: deploymentName(model, base.version, 'production'),
    });
  }
}

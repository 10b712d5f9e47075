/**
 * rollbackWorkflow: `runway rollback MODEL` when no promotion is in flight. Puts the `previous`
 * version back at 100% (redeploying it if it was scaled down), moves the aliases back and marks
 * the demoted version rejected: the same restore step as a rollback after graduation
 * (workflows/restore.ts). Every step is an idempotent activity, so a retry or a worker restart
 * repeats nothing harmful.
 */
import {
  ApplicationFailure,
  log,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ModelSpec } from '../specs/schema';
import { SERVING_DEFAULTS, UNIT_HEADER_DEFAULT } from '../specs/serving-defaults';
import type { RollbackWorkflowInput, RollbackWorkflowResult } from './api';
import { deployInput } from './deployments';
import { restoreVersion } from './restore';
import { RunwayOutcome, RunwayStage } from './search-attributes';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '20s', maximumAttempts: 5 },
});

/** Serving settings for a redeploy when neither the caller nor the registry knows the spec's. */
const DEFAULT_SERVING: ModelSpec['serving'] = {
  ...SERVING_DEFAULTS,
  batching: {
    ...SERVING_DEFAULTS.batching,
    preferredBatchSizes: [...SERVING_DEFAULTS.batching.preferredBatchSizes],
  },
  resources: { ...SERVING_DEFAULTS.resources },
};

export async function rollbackWorkflow(input: RollbackWorkflowInput): Promise<RollbackWorkflowResult> {
  const { model } = input;
  upsertSearchAttributes([{ key: RunwayStage, value: 'rolling_back' }]);
  const target = await acts.resolveRollbackTarget({ model, toVersion: input.toVersion });
  if (!target.to) {
    throw ApplicationFailure.nonRetryable(
      `${model} has no previous version to roll back to (registry alias "previous" is unset)`,
      'NothingToRollBackTo',
    );
  }
  const to = target.to;
  const reason = `rollback by ${input.by}: ${input.reason}`;
  setCurrentDetails(
    `**${model}**: restoring v${to.version}${target.from ? ` (replacing v${target.from})` : ''}`,
  );
  const serving = input.serving ?? target.serving ?? DEFAULT_SERVING;
  const deployment = await acts.deploy(
    deployInput(model, to, 'production', serving, {
      replicas: input.serving?.replicas ?? 1,
      ifMissing: true,
    }),
  );
  await restoreVersion(
    {
      route: (variants, why) =>
        acts.setTraffic({
          model,
          variants,
          sticky: { header: input.unitHeader ?? UNIT_HEADER_DEFAULT },
          reason: why,
        }),
      registry: (_summary, update) => acts.updateRegistry(update),
      teardown: (_summary, name) => acts.teardown({ name }),
    },
    { model, to: to.version, from: target.from, reason, deployment: deployment.name },
  );
  await acts.notify({ model, version: to.version, event: 'rollback_done', message: reason });
  log.info(reason);
  upsertSearchAttributes([
    { key: RunwayStage, value: 'done' },
    { key: RunwayOutcome, value: 'rolled_back' },
  ]);
  setCurrentDetails(`**${model}**: v${to.version} serves 100% — ${reason}`);
  return { model, from: target.from, to: to.version, redeployed: !target.wasRunning, reason };
}

/**
 * rollbackWorkflow: `runway rollback MODEL` when no promotion is in flight. Puts the `previous`
 * version back at 100% (redeploying it if it was scaled down), moves the aliases back and marks
 * the demoted version rejected. Every step is an idempotent activity, so a retry or a worker
 * restart repeats nothing harmful.
 */
import {
  ApplicationFailure,
  log,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RollbackWorkflowInput, RollbackWorkflowResult } from './api';
import type { ModelSpec } from '../specs/schema';
import { RunwayOutcome, RunwayStage } from './search-attributes';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '20s', maximumAttempts: 5 },
});

/** Serving settings for a redeploy when neither the caller nor the registry knows the spec's. */
const DEFAULT_SERVING: ModelSpec['serving'] = {
  replicas: 1,
  device: 'cpu',
  instances: 1,
  batching: { maxBatchSize: 32, preferredBatchSizes: [8, 16], maxQueueDelayMs: 2, maxQueueSize: 1024 },
  resources: { cpu: '1', memory: '1Gi', gpu: 0 },
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
  const reason = `rollback by ${input.by}: ${input.reason}`;
  setCurrentDetails(
    `**${model}**: restoring v${target.to.version}${target.from ? ` (replacing v${target.from})` : ''}`,
  );
  const deployment = await acts.deploy({
    model,
    version: target.to.version,
    environment: 'production',
    artifactPath: target.to.artifactPath,
    sha256: target.to.sha256,
    replicas: input.serving?.replicas ?? 1,
    serving: input.serving ?? target.serving ?? DEFAULT_SERVING,
    ifMissing: true,
  });
  await acts.setTraffic({
    model,
    variants: [{ name: `v${target.to.version}`, deployment: deployment.name, weight: 100 }],
    sticky: { header: input.unitHeader ?? 'x-runway-unit' },
    reason,
  });
  await acts.updateRegistry({
    model,
    aliases: { production: target.to.version, previous: null },
    status: { version: target.to.version, status: 'production', reason },
  });
  if (target.from && target.from !== target.to.version) {
    await acts.updateRegistry({ model, status: { version: target.from, status: 'rejected', reason } });
    await acts.teardown({ name: `${model}-v${target.from}-production` });
  }
  await acts.notify({ model, version: target.to.version, event: 'rollback_done', message: reason });
  log.info(reason);
  upsertSearchAttributes([
    { key: RunwayStage, value: 'done' },
    { key: RunwayOutcome, value: 'rolled_back' },
  ]);
  setCurrentDetails(`**${model}**: v${target.to.version} serves 100% — ${reason}`);
  return { model, from: target.from, to: target.to.version, redeployed: !target.wasRunning, reason };
}

/**
 * Steps 3 and 4: deploy to staging, then contract, golden-set and latency tests against it.
 * Staging is torn down afterwards whatever the verdict, even when the promotion is cancelled.
 */
import { CancellationScope } from '@temporalio/workflow';
import type { PreparedPromotion } from '../../activities/contracts';
import { quick, run, slow } from '../activity-calls';
import { deployInput, deploymentName } from '../deployments';
import type { Promotion } from './context';
import { Ended } from './state';

export async function stageAndTest(p: Promotion, prep: PreparedPromotion): Promise<void> {
  const { spec, model, version } = p;
  p.enter('stage', 'deploy to staging');
  const staging = await run(
    'deploy',
    `deploy v${version} to staging`,
    slow,
    deployInput(model, prep.candidate, 'staging', spec.serving, { replicas: 1 }),
  );
  await run('updateRegistry', `alias staging → v${version}`, quick, { model, aliases: { staging: version } });
  p.enter('integration', 'golden set, signature and latency against staging');
  try {
    const verdict = await run('integrationTest', `integration tests of v${version} on staging`, slow, {
      model,
      version,
      endpoint: staging.endpoints[0] ?? '',
      signature: spec.model.signature,
      integration: spec.integration,
      p99LatencyMs: spec.integration.maxP99LatencyMs ?? spec.slos.p99LatencyMs,
    });
    p.judged(verdict);
    if (verdict.result !== 'pass') throw new Ended('rejected', `integration tests failed: ${verdict.reason}`);
  } finally {
    await CancellationScope.nonCancellable(() =>
      run('teardown', `tear down staging v${version}`, slow, {
        name: deploymentName(model, version, 'staging'),
      }),
    );
  }
  p.state.stage = 'shadow';
}

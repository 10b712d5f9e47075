/**
 * An artifact changed on disk after it was pushed is caught by its sha256 before anything is
 * served: the promotion fails clearly and nothing of the candidate is deployed. Changed while a
 * promotion runs, it is caught when the next run of the workflow verifies again, and traffic goes
 * back to the baseline: the model keeps its route.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { promotionWorkflowId } from '../../workflows/api';
import { settledOutcome, testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';
import { recordHistory } from '../helpers/record';

const platform = usePromotionPlatform();

describe('tampered artifact', () => {
  it('fails the promotion naming the digest mismatch, before serving', { timeout: 180_000 }, async () => {
    const model = 'fd-tamper';
    const spec = testSpec(model);
    await platform.bootstrap(model, spec, { serve: false });
    const v2 = await platform.deps.registry.get(model, '2');
    expect(v2).toBeDefined();
    fs.chmodSync(v2!.artifactPath, 0o644);
    fs.appendFileSync(v2!.artifactPath, Buffer.from('not the model that was pushed'));
    await platform.start(spec, '2');
    const reason = await settledOutcome(platform, model);
    expect(reason).toMatch(/^failed: /);
    expect(reason).toMatch(/sha256|digest/i);
    expect(reason).toContain(v2!.sha256.slice(0, 12));
    expect(await platform.deps.fleet.list({ model })).toEqual([]);
  });

  it(
    'tampered mid-promotion: the next run fails its check and routes everything back to the baseline',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-tamper-live';
      const spec = testSpec(model, { shadow: { duration: '20s' } });
      // A low history limit rolls the run over at one of the first shadow looks; the new run starts
      // by verifying the artifacts again, before it knows the baseline from the registry.
      const { traffic, handle } = await platform.launch(spec, '2', { rps: 30, extra: { historyLimit: 80 } });
      // once the candidate serves (the mirror is set), so its own server has already checked the file
      await waitForStatus(platform, model, (s) => s.stage === 'shadow' && !!s.mirror, 120_000);
      const v2 = await platform.deps.registry.get(model, '2');
      fs.chmodSync(v2!.artifactPath, 0o644);
      fs.appendFileSync(v2!.artifactPath, Buffer.from('changed while serving'));
      const outcome = await settledOutcome(platform, model);
      const stats = await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'tamper-live-continued-run');
      expect(outcome).toMatch(/^failed: .*prepareCandidate: .*modified after push/);
      const history = await handle.fetchHistory();
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      expect(started?.continuedExecutionRunId, 'the failure came in a continued run').toBeTruthy();
      // the model is still served, by the baseline alone, and the candidate is gone
      expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
      const route = await platform.deps.router.getRoute(model);
      expect(route?.mirror).toBeUndefined();
      expect((await platform.deps.fleet.list({ model })).map((d) => d.version)).toEqual(['1']);
      expect(Object.keys(stats.byStatus), JSON.stringify(stats.byStatus)).toEqual(['200']);
    },
  );
});

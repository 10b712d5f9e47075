/**
 * Decisions need authority, and the platform policy holds, on real components (Temporal dev
 * server, router, local fleet of `runway serve` processes, the compiled CLI):
 * - the hostile sequence of issue 19: v2 waits for alice's approval, `runway promote-full --as
 *   bob` is refused (not queued), alice approves, v2 walks shadow and canary; the refusal is in
 *   the history and in `runway audit`, beside the policy in force;
 * - a spec that weakens the platform policy is rejected before anything deploys, naming the rule
 *   and the field.
 * The policy comes from the platform config file (`<home>/platform.yaml`), as `runway up` reads it.
 */
import { describe, expect, it } from 'vitest';
import { fetchChain } from '../../audit/fetch';
import { buildPromotionAudit, type AuditDocument } from '../../audit/report';
import { promotionWorkflowId } from '../../workflows/api';
import { recordHistory } from '../helpers/record';
import { testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';
import { runCliOn, type CliResult } from '../helpers/cli';

const platform = usePromotionPlatform({
  platformConfig: () => ({
    policy: {
      // the hostile test's model: a spec that conforms
      'ho-*': {
        minApprovals: 1,
        approvers: ['alice', 'carol'],
        requireShadow: true,
        maxFirstCanaryStep: 10,
        allowProceedOnInconclusive: false,
      },
      'weak-*': { minApprovals: 2, requireShadow: true, maxFirstCanaryStep: 10 },
      // a catch-all the narrower entries cannot loosen
      '*': { allowProceedOnInconclusive: false },
    },
  }),
});

/** The compiled CLI, asynchronously: the worker runs in this process and must keep answering. */
function runway(args: string[]): Promise<CliResult> {
  return runCliOn(platform.home, args, { RUNWAY_TASK_QUEUE: platform.taskQueue, RUNWAY_LOG_LEVEL: 'warn' });
}

describe.concurrent('authority and policy', () => {
  it(
    'promote-full by bob while v2 waits for alice is refused; after her approval v2 walks shadow and canary',
    { timeout: 300_000 },
    async () => {
      const model = 'ho-fraud';
      const spec = testSpec(model, {
        approval: { required: 1, approvers: ['alice'] },
        rollback: { onInconclusive: 'pause' },
      });
      await platform.bootstrap(model, spec);
      const traffic = platform.traffic(model);
      const handle = await platform.start(spec, '2', 'ci-bot');
      await waitForStatus(platform, model, (s) => s.stage === 'approve', 90_000);

      const full = await runway(['promote-full', model, '--as', 'bob', '--reason', 'ship it']);
      expect(full.code, full.stdout).not.toBe(0);
      expect(full.stderr).toContain(
        `refused: bob may not promote-full ${model}: it skips the analysis, so only its approvers or operators may (alice)`,
      );
      expect(full.stdout).not.toContain('promoting');
      // alice may decide, but not before the approvals are in: refused too, not queued
      const early = await runway(['promote-full', model, '--as', 'alice']);
      expect(early.stderr).toContain('v2 is still at approve: promote-full is refused, not queued');
      const approved = await runway(['approve', model, '--as', 'alice', '--comment', 'numbers look right']);
      expect(approved.code, approved.stderr).toBe(0);

      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, handle.workflowId, 'authority-hostile-promote-full');
      expect(result.outcome, result.reason).toBe('promoted');
      expect(result.reason).toBe('all steps passed');
      const stages = result.trafficChanges.map((c) => c.stage);
      expect(stages).toEqual(['shadow', 'canary', 'canary', 'canary', 'graduate']);
      expect(result.trafficChanges[0]?.mirror).toMatchObject({ variant: 'v2', percent: 100 });

      // the history: the refused updates, each with who and why
      const audit = buildPromotionAudit(
        handle.workflowId,
        await fetchChain(platform.client, handle.workflowId),
      );
      expect(audit.manualActions.map((m) => [m.action, m.by, m.via, m.accepted])).toEqual([
        ['promoteFull', 'bob', 'update', false],
        ['promoteFull', 'alice', 'update', false],
      ]);
      expect(audit.notifications.map((n) => n.event)).toContain('promoteFull_ignored');
      expect(audit.policy).toMatchObject({
        matched: ['ho-*', '*'],
        rules: { minApprovals: 1, requireShadow: true, maxFirstCanaryStep: 10 },
        approvers: ['alice'],
      });

      // and `runway audit`, as an auditor reads it
      const md = await runway(['audit', model, '--no-replay']);
      expect(md.code, md.stderr).toBe(0);
      expect(md.stdout).toMatch(
        /\*\*promoteFull\*\* by bob via update .*: ship it — \*\*refused\*\*: bob may not promote-full/,
      );
      expect(md.stdout).toMatch(/platform policy: entries `ho-\*`, `\*`: minApprovals 1 \(ho-\*\)/);
      const json = await runway(['audit', model, '--format', 'json', '--no-replay']);
      const doc = JSON.parse(json.stdout) as AuditDocument;
      expect(doc.promotions[0]?.manualActions[0]).toMatchObject({ by: 'bob', accepted: false });
      expect(doc.promotions[0]?.policy?.rules.requireShadow).toBe(true);
    },
  );

  it(
    'a spec that weakens the platform policy is rejected before anything deploys, naming rule and field',
    { timeout: 240_000 },
    async () => {
      const model = 'weak-scorer';
      const spec = testSpec(model, {
        shadow: { enabled: false },
        rollback: { onInconclusive: 'proceed' },
      });
      await platform.bootstrap(model, spec);
      const handle = await platform.start(spec, '2');
      const result = await platform.result(model);
      await recordHistory(platform.client, handle.workflowId, 'policy-refused-at-start');
      expect(result.outcome).toBe('rejected');
      expect(result.reason).toBe(
        `the platform policy refuses this spec of ${model}: ` +
          "approval.required is 1, expected at least 2 (platform policy 'weak-*': minApprovals); " +
          "shadow.enabled is false, expected true (platform policy 'weak-*': requireShadow); " +
          "rollback.onInconclusive is proceed, expected pause or rollback (platform policy '*': allowProceedOnInconclusive)",
      );
      // nothing deployed, no route touched: production is v1 alone, as before
      const history = await platform.client.workflow.getHandle(promotionWorkflowId(model)).fetchHistory();
      const scheduled = (history.events ?? []).flatMap((e) => {
        const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
        return name ? [name] : [];
      });
      expect(scheduled).not.toContain('deploy');
      expect(scheduled).not.toContain('setTraffic');
      expect(scheduled).not.toContain('evaluate');
      expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
      expect((await platform.deps.fleet.list({ model })).map((d) => d.name)).toEqual([
        `${model}-v1-production`,
      ]);
      // the audit shows the policy with what it refused
      const audit = buildPromotionAudit(
        handle.workflowId,
        await fetchChain(platform.client, handle.workflowId),
      );
      expect(audit.policy?.violations?.map((v) => [v.rule, v.field])).toEqual([
        ['minApprovals', 'approval.required'],
        ['requireShadow', 'shadow.enabled'],
        ['allowProceedOnInconclusive', 'rollback.onInconclusive'],
      ]);
      expect(audit.outcome.outcome).toBe('rejected');
    },
  );
});

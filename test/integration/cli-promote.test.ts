/**
 * The CLI as CI and approvers use it, against a real worker and dev server: `runway promote --wait`
 * exits with the outcome's code and the reason on stderr; a bad spec never starts a promotion;
 * `runway approve` by someone not allowed is refused with the reason.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { promotionWorkflowId } from '../../workflows/api';
import { MODELS_DIR, usePromotionPlatform, testSpec, waitForStatus } from '../helpers/promotion';
import { runCliOn, type CliResult } from '../helpers/cli';

const platform = usePromotionPlatform();

function specYaml(name: string, extra = ''): string {
  return `name: ${name}
owner: tests
model:
  signature:
    inputs: [{ name: features, datatype: FP32, shape: [-1, 8] }]
    outputs: [{ name: score, datatype: FP32, shape: [-1, 1] }]
slos: { p99LatencyMs: 250, errorRate: 0.02 }
evaluation: { dataset: ${path.join(MODELS_DIR, 'eval.json')}, min: 0.8, maxRegression: 0.01 }
approval: { required: 1, approvers: [alice] }
${extra}`;
}

function runway(args: string[]): Promise<CliResult> {
  return runCliOn(platform.home, args, {
    RUNWAY_TASK_QUEUE: platform.taskQueue,
    RUNWAY_REGISTRY_DIR: path.join(platform.home, 'registry'),
  });
}

describe('runway CLI', () => {
  it(
    'promote --wait exits 2 with the reason when the candidate is rejected',
    { timeout: 180_000 },
    async () => {
      const model = 'fd-cli-reject';
      await platform.bootstrap(model, testSpec(model), { serve: false });
      const file = path.join(platform.home, `${model}.yaml`);
      fs.writeFileSync(file, specYaml(model));
      const res = await runway([
        'promote',
        file,
        '--version',
        '3',
        '--wait',
        '--as',
        'ci-bot',
        '--meta',
        'commit=abc123',
      ]);
      expect(res.stderr).toMatch(/started promotion of fd-cli-reject v3/);
      expect(res.stderr).toMatch(
        /promotion rejected: evaluation failed: accuracy 0\.70\d+ is below the minimum 0\.8/,
      );
      expect(res.code).toBe(2);
    },
  );

  it('a bad spec is refused with file:line and field, and nothing starts', { timeout: 60_000 }, async () => {
    const model = 'fd-cli-badspec';
    const file = path.join(platform.home, `${model}.yaml`);
    fs.writeFileSync(file, specYaml(model, 'canary:\n  interval: soon\n'));
    const res = await runway(['promote', file, '--version', '2']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`${model}\\.yaml:11  canary\\.interval: expected a duration`));
    await expect(
      platform.client.workflow.getHandle(promotionWorkflowId(model)).describe(),
    ).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it(
    'rollback prints the root cause of the workflow failure it waited on, and exits 1',
    { timeout: 120_000 },
    async () => {
      const never = await runway(['rollback', 'fd-cli-never-promoted', '--reason', 'drill']);
      expect(never.code, never.stderr).toBe(1);
      expect(never.stderr).toContain(
        'runway: rollback of fd-cli-never-promoted failed: fd-cli-never-promoted has no previous version to roll back to (registry alias "previous" is unset)',
      );
      expect(never.stderr).not.toMatch(/^runway: Workflow execution failed$/m);

      const model = 'fd-cli-rollback-to';
      await platform.bootstrap(model, testSpec(model), { serve: false });
      const missing = await runway(['rollback', model, '--to', '99', '--reason', 'drill']);
      expect(missing.code, missing.stderr).toBe(1);
      expect(missing.stderr).toContain(
        `runway: rollback of ${model} failed: ${model} v99 is not in the registry`,
      );
      // the chain names the activity the cause came from
      expect(missing.stderr).toMatch(
        /cause chain: .*workflow failed ← activity resolveRollbackTarget failed ← /,
      );
      // the UI says what this run was asked to do, by whom and why
      const d = await platform.client.workflow.getHandle(`rollback:${model}`).describe();
      expect(await d.staticSummary()).toMatch(new RegExp(`^rollback ${model} to v99 — by \\S+$`));
      expect(await d.staticDetails()).toMatch(/requested by \*\*\S+\*\*: drill/);
    },
  );

  it(
    "sets the Temporal UI's summary and details at start: what an approver needs on one screen",
    { timeout: 120_000 },
    async () => {
      const model = 'fd-cli-details';
      await platform.bootstrap(model, testSpec(model), { serve: false });
      const file = path.join(platform.home, `${model}.yaml`);
      fs.writeFileSync(file, specYaml(model, 'shadow: { duration: 20s }\nexperiment: { kind: bandit }\n'));
      const res = await runway([
        'promote',
        file,
        '--version',
        '2',
        '--as',
        'ci-bot',
        '--meta',
        'commit=abc123',
      ]);
      expect(res.code, res.stderr).toBe(0);
      const handle = platform.client.workflow.getHandle(promotionWorkflowId(model));
      try {
        const d = await handle.describe();
        expect(await d.staticSummary()).toBe(`promote ${model} v2 over v1 — by ci-bot`);
        const details = (await d.staticDetails())!;
        const sha = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
        for (const expected of [
          `**${model}**: candidate **v2**, production **v1**`,
          '- triggered by **ci-bot** (commit=abc123, specFile=' + file + ')',
          `- spec sha256 \`${sha}\``,
          '- steps: evaluate → approve → stage → integration test → shadow 20s → canary 5% 5m → 25% 5m → 50% 5m → bandit → 100%',
          '- approval: 1 of alice (not ci-bot, who started it); deadline 1d after evaluation passes (then it expires)',
          'More Actions → Send a Signal → `approve`, payload `{"approver": "<you>", "comment": "…"}`',
          `\`runway approve ${model} --as <you> --comment "…"\``,
        ]) {
          expect(details).toContain(expected);
        }
      } finally {
        await handle.cancel();
      }
    },
  );

  it(
    'approve by someone outside the allow-list is refused; by an approver it counts',
    { timeout: 180_000 },
    async () => {
      const model = 'fd-cli-approve';
      await platform.bootstrap(model, testSpec(model), { serve: false });
      const file = path.join(platform.home, `${model}.yaml`);
      fs.writeFileSync(file, specYaml(model));
      const started = await runway(['promote', file, '--version', '2', '--as', 'ci-bot']);
      expect(started.code, started.stderr).toBe(0);
      await waitForStatus(platform, model, (s) => s.stage === 'approve', 90_000);
      const refused = await runway(['approve', model, '--as', 'mallory']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /refused: mallory is not an approver for fd-cli-approve \(allowed: alice\)/,
      );
      const ok = await runway(['approve', model, '--as', 'alice', '--comment', 'ship it']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/approved by alice \(1\/1\)/);
      const status = await runway(['status', model, '--json']);
      expect(JSON.parse(status.stdout).approvals[0]).toMatchObject({
        approver: 'alice',
        comment: 'ship it',
        via: 'update',
      });
      await platform.client.workflow.getHandle(promotionWorkflowId(model)).cancel();
      expect((await platform.result(model)).outcome).toBe('cancelled');
    },
  );
});

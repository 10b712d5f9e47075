/**
 * `runway audit` on real promotions: a v3 rejected at evaluation, and a v2 that continues-as-new,
 * collects an ignored and an accepted approval, is paused and then cancelled. The audit is read
 * programmatically and through the compiled CLI, and the histories are checked for the router token.
 * RUNWAY_RECORD_AUDIT=1 saves the histories to test/fixtures/audit/ for the unit tests.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { auditModel, fetchChain, listPromotions } from '../../audit/fetch';
import type { AuditDocument, PromotionAudit } from '../../audit/report';
import { projectRoot, runwayBin } from '../../common/paths';
import {
  approveSignal,
  approveUpdate,
  pauseSignal,
  promotionWorkflowId,
  type PromotionInput,
} from '../../workflows/api';
import { RunwayModel, RunwayStage, RunwayVersion } from '../../workflows/search-attributes';
import { historyToJSON } from '../helpers/histories';
import { testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';
import { testTemporal } from '../helpers/temporal';

const platform = usePromotionPlatform();
const FIXTURES = path.join(projectRoot, 'test', 'fixtures', 'audit');
const WORKFLOWS = path.join(projectRoot, 'workflows', 'index.ts');

/** A client whose identity the server records, as the CLI's is ("who@host (runway cli)"). */
async function clientAs(identity: string): Promise<Client> {
  const endpoint = await testTemporal();
  return new Client({ connection: platform.client.connection, namespace: endpoint.namespace, identity });
}

async function startAs(identity: string, model: string, version: string, extra: Partial<PromotionInput>) {
  const client = await clientAs(identity);
  const input: PromotionInput = {
    spec: testSpec(model),
    specSha256: 'a'.repeat(64),
    version,
    triggeredBy: 'ci-bot',
    metadata: { commit: 'deadbeef', pipeline: 'https://ci.example/p/42' },
    ...extra,
  };
  return client.workflow.start('promotionWorkflow', {
    taskQueue: platform.taskQueue,
    workflowId: promotionWorkflowId(model),
    args: [input],
    typedSearchAttributes: [
      { key: RunwayModel, value: model },
      { key: RunwayVersion, value: version },
      { key: RunwayStage, value: 'evaluate' },
    ],
    workflowExecutionTimeout: '10m',
  });
}

async function record(model: string, name: string): Promise<string[]> {
  const runs = await fetchChain(platform.client, promotionWorkflowId(model));
  const texts = runs.map((r) => historyToJSON({ events: r.events }));
  if (process.env.RUNWAY_RECORD_AUDIT === '1') {
    fs.mkdirSync(FIXTURES, { recursive: true });
    runs.forEach((r, i) => fs.writeFileSync(path.join(FIXTURES, `${name}.run${i}.json`), texts[i] + '\n'));
  }
  return texts;
}

async function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const { address } = await testTemporal();
  const r = spawnSync(process.execPath, [runwayBin, ...args], {
    encoding: 'utf8',
    timeout: 90_000,
    env: {
      ...process.env,
      RUNWAY_HOME: platform.home,
      TEMPORAL_ADDRESS: address,
      RUNWAY_LOG_LEVEL: 'warn',
    },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function build(): void {
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: projectRoot, encoding: 'utf8' });
  // Others' half-written files may not typecheck; tsc still emits, and ours must be there.
  if (!fs.existsSync(path.join(projectRoot, 'dist', 'cli', 'commands', 'audit.js')))
    throw new Error(r.stdout);
}

describe.concurrent('runway audit', () => {
  it(
    'a rejection at evaluation: trigger, identity, hashes, numbers, outcome',
    { timeout: 180_000 },
    async () => {
      const model = 'au-eval';
      await platform.bootstrap(model, testSpec(model), { serve: false });
      const handle = await startAs('ci@runner-7 (runway cli)', model, '3', {});
      await handle.result();
      const texts = await record(model, 'evaluation-rejected');

      const doc = await auditModel(platform.client, { model, replay: { workflowsPath: WORKFLOWS } });
      const a = doc.promotions[0] as PromotionAudit;
      expect(doc).toMatchObject({ schemaVersion: 2, kind: 'runway.audit', model });
      expect(a.trigger).toMatchObject({
        triggeredBy: 'ci-bot',
        identity: 'ci@runner-7 (runway cli)',
        metadata: { commit: 'deadbeef', pipeline: 'https://ci.example/p/42' },
      });
      expect(a.spec.sha256).toBe('a'.repeat(64));
      const v3 = await platform.deps.registry.get(model, '3');
      expect(a.artifacts.candidate).toEqual({ version: '3', sha256: v3?.sha256 });
      expect(a.artifacts.baseline?.version).toBe('1');
      expect(a.evaluation?.verdict).toMatchObject({ check: 'evaluation', result: 'fail' });
      expect(a.evaluation?.verdict.candidate).toMatchObject({ version: '3' });
      expect(a.outcome).toMatchObject({ status: 'completed', outcome: 'rejected' });
      expect(a.outcome.reason).toMatch(/evaluation failed: accuracy/);
      expect(a.trafficChanges).toEqual([]);
      expect(a.replay).toMatchObject({ checked: true, ok: true, errors: [] });
      // the router's admin token never reaches a history
      expect(platform.router.token.length).toBeGreaterThan(8);
      for (const t of texts) expect(t).not.toContain(platform.router.token);
    },
  );

  it(
    'approval, ignored approval, pause, cancel across continue-as-new; the CLI agrees',
    { timeout: 240_000 },
    async () => {
      const model = 'au-cancel';
      await platform.bootstrap(model, testSpec(model));
      const traffic = platform.traffic(model, 30);
      // A tiny history limit: the promotion continues-as-new at its first look in shadow.
      const handle = await startAs('ci@runner-8 (runway cli)', model, '2', { historyLimit: 70 });
      await waitForStatus(platform, model, (s) => s.stage === 'approve', 90_000);
      const mallory = (await clientAs('mallory@evil (web ui)')).workflow.getHandle(
        promotionWorkflowId(model),
      );
      await mallory.signal(approveSignal, { approver: 'mallory', comment: 'me!' });
      const alice = (await clientAs('alice@laptop (runway cli)')).workflow.getHandle(
        promotionWorkflowId(model),
      );
      await alice.executeUpdate(approveUpdate, { args: [{ approver: 'alice', comment: 'lgtm' }] });
      // the first shadow look rolls the run over (history limit); wait for a look in the new run
      await waitForStatus(
        platform,
        model,
        (s) => s.stage === 'shadow' && s.lastVerdicts[0]?.check === 'shadow',
        120_000,
      );
      const dave = (await clientAs('dave@oncall (runway cli)')).workflow.getHandle(
        promotionWorkflowId(model),
      );
      await dave.signal(pauseSignal, { by: 'dave', reason: 'checking dashboards' });
      await waitForStatus(platform, model, (s) => s.paused, 30_000);
      await platform.client.workflow.getHandle(promotionWorkflowId(model)).cancel();
      const result = await platform.result(model);
      await traffic.stop();
      expect(result.outcome).toBe('cancelled');
      const texts = await record(model, 'approve-pause-cancel');
      expect(texts.length).toBeGreaterThanOrEqual(2);
      for (const t of texts) expect(t).not.toContain(platform.router.token);
      void handle;

      const doc = await auditModel(platform.client, { model, replay: { workflowsPath: WORKFLOWS } });
      const a = doc.promotions[0] as PromotionAudit;
      expect(a.runs.length).toBeGreaterThanOrEqual(2);
      expect(a.runs[0]?.closedAs).toBe('continued_as_new');
      expect(a.runs.at(-1)?.closedAs).toBe('completed');
      expect(a.trigger.identity).toBe('ci@runner-8 (runway cli)');
      expect(a.approvals).toEqual([
        expect.objectContaining({
          decision: 'approve',
          via: 'signal',
          approver: 'mallory',
          identity: 'mallory@evil (web ui)',
          accepted: false,
          verdict: expect.stringMatching(/mallory is not an approver/),
        }),
        expect.objectContaining({
          decision: 'approve',
          via: 'update',
          approver: 'alice',
          comment: 'lgtm',
          identity: 'alice@laptop (runway cli)',
          accepted: true,
          verdict: 'approved by alice (1/1)',
        }),
      ]);
      expect(a.manualActions).toEqual([
        expect.objectContaining({ action: 'pause', by: 'dave', identity: 'dave@oncall (runway cli)' }),
      ]);
      expect(a.pauses).toEqual([
        expect.objectContaining({ kind: 'manual', by: 'dave', reason: 'checking dashboards' }),
      ]);
      const shadow = a.trafficChanges.filter((c) => c.stage === 'shadow');
      expect(shadow[0]).toMatchObject({
        weights: { v1: 100, v2: 0 },
        mirror: { variant: 'v2', percent: 100 },
      });
      const last = a.trafficChanges.at(-1);
      expect(last).toMatchObject({ weights: { v1: 100 }, reason: 'rollback: cancelled', applied: true });
      // the shadow verdicts with their numbers are attached to the change they led to
      const decided = a.trafficChanges.find((c) => c.basedOn.some((b) => b.guard?.check === 'shadow'));
      expect(decided?.basedOn[0]?.guard).toMatchObject({ result: 'pass', samples: expect.any(Number) });
      expect(a.rollbacks).toEqual([expect.objectContaining({ kind: 'automatic', reason: 'cancelled' })]);
      expect(a.outcome).toMatchObject({ status: 'completed', outcome: 'cancelled' });
      expect(a.replay).toMatchObject({ checked: true, ok: true });

      const listed = await listPromotions(platform.client, model);
      expect(listed.map((p) => [p.version, p.outcome, p.status])).toEqual([['2', 'cancelled', 'completed']]);

      // the compiled CLI: JSON report, Markdown report and the list
      build();
      const json = await cli(['audit', model, '--format', 'json', '--no-replay']);
      expect(json.status, json.stderr).toBe(0);
      const fromCli = JSON.parse(json.stdout) as AuditDocument;
      expect(fromCli.promotions[0]?.approvals.map((x) => [x.approver, x.accepted])).toEqual([
        ['mallory', false],
        ['alice', true],
      ]);
      expect(fromCli.promotions[0]?.trafficChanges).toEqual(a.trafficChanges);
      const md = await cli(['audit', model, '--version', '2']);
      expect(md.status, md.stderr).toBe(0);
      expect(md.stdout).toContain('alice@laptop (runway cli)');
      expect(md.stdout).toContain('**cancelled**');
      expect(md.stdout).toMatch(/replay against current workflow code: OK/);
      const list = await cli(['audit', model, '--list', '--format', 'json']);
      expect(list.status, list.stderr).toBe(0);
      expect((JSON.parse(list.stdout) as { promotions: unknown[] }).promotions).toHaveLength(1);
      const missing = await cli(['audit', model, '--version', '9']);
      expect(missing.status).toBe(1);
      expect(missing.stderr).toMatch(/no promotion of au-cancel v9/);
    },
  );
});

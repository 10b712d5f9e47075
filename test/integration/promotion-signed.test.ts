/**
 * Signed decisions (approval.identity: signed) on a real Temporal server, the way a hostile
 * colleague would try them: an approval in alice's name with no signature, a valid signature
 * copied from another promotion or made for another version, a tampered comment, a replayed
 * nonce, one key approving twice, the starter approving their own promotion, an unsigned
 * promote-full, an unsigned start. Then the approval an approver pastes into the Temporal UI
 * (`runway approve --print`, sent as a Signal) counts, and `runway audit` marks every decision,
 * including one whose key was revoked after it was made.
 *
 * The keyring is the platform config's file; bob's key is made by `runway keys init` itself.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { describe, expect as globalExpect, it } from 'vitest';
import YAML from 'yaml';
import { auditModel } from '../../audit/fetch';
import { auditMarkdown } from '../../audit/markdown';
import type { PromotionAudit } from '../../audit/report';
import { sign } from '../../cli/signer';
import { projectRoot, runwayBin } from '../../common/paths';
import {
  fingerprint,
  generateKeyPair,
  parseKeyring,
  publicKeyText,
  type DecisionContext,
} from '../../common/signing';
import type { ModelSpec } from '../../specs/schema';
import {
  approveSignal,
  approveUpdate,
  promoteFullSignal,
  promotionWorkflowId,
  statusQuery,
  type ApprovalInput,
} from '../../workflows/api';
import { recordHistory } from '../helpers/record';
import { testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';
import crypto from 'node:crypto';
import { runCliOn, type CliResult } from '../helpers/cli';

const WORKFLOWS = path.join(projectRoot, 'workflows', 'index.ts');
const keys = { alice: generateKeyPair(), 'ci-bot': generateKeyPair() };
let bobFile = '';
let bobLine = '';
let keyDir = '';

/** The keyring as the platform admin writes it: alice's and CI's keys, bob's line from `keys init`. */
function keyringYaml(revokedAlice?: string): string {
  const entries = [
    {
      name: 'alice',
      publicKey: publicKeyText(keys.alice.publicKey),
      ...(revokedAlice ? { revoked: revokedAlice } : {}),
    },
    { name: 'ci-bot', publicKey: publicKeyText(keys['ci-bot'].publicKey), comment: 'the CI pipeline' },
    ...(YAML.parse(bobLine) as unknown[]),
  ];
  return YAML.stringify({ keys: entries });
}

const platform = usePromotionPlatform({
  platformConfig: (home) => {
    keyDir = path.join(home, 'keys');
    const made = spawnSync(process.execPath, [runwayBin, 'keys', 'init', '--as', 'bob'], {
      env: { ...process.env, RUNWAY_KEY_DIR: keyDir },
      encoding: 'utf8',
    });
    if (made.status !== 0) throw new Error(`runway keys init failed: ${made.stderr}`);
    bobLine = made.stdout.trim();
    bobFile = path.join(keyDir, 'bob.key');
    // alice's and CI's keys where the CLI looks for them (a CI job would mount its key there).
    for (const [name, pair] of Object.entries(keys)) {
      const pem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      fs.writeFileSync(path.join(keyDir, `${name}.key`), pem, { mode: 0o600 });
    }
    const file = path.join(home, 'keyring.yaml');
    fs.writeFileSync(file, keyringYaml());
    return { keyring: { file } };
  },
});

const signedSpec = (model: string): ModelSpec =>
  testSpec(model, {
    approval: { required: 2, approvers: ['alice', 'bob', 'ci-bot'], identity: 'signed' },
  });

/** Starts a promotion as CI does: its `promote` decision signed by ci-bot's key. */
async function startSigned(spec: ModelSpec, version = '2'): Promise<WorkflowHandle> {
  const artifact = await platform.deps.registry.get(spec.name, version);
  const signedStart = sign(keys['ci-bot'].privateKey, 'promote', 'ci-bot', {
    model: spec.name,
    version,
    workflowId: promotionWorkflowId(spec.name),
    firstRunId: null,
    specSha256: 'test',
    artifactSha256: artifact!.sha256,
  });
  return platform.start(spec, version, 'ci-bot', { signedStart });
}

async function contextAtApproval(model: string): Promise<DecisionContext> {
  const s = await waitForStatus(platform, model, (x) => x.stage === 'approve', 90_000);
  globalExpect(s.identity).toBe('signed');
  return s.decisionContext!;
}

const approval = (
  who: 'alice' | 'ci-bot',
  ctx: DecisionContext,
  comment: string,
  key: crypto.KeyObject = keys[who].privateKey,
): ApprovalInput => ({ approver: who, comment, signed: sign(key, 'approve', who, ctx, comment) });

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    globalExpect(err).toBeInstanceOf(WorkflowUpdateFailedError);
    return (err as WorkflowUpdateFailedError).cause?.message ?? '';
  }
  throw new Error('expected the update to be refused');
}

async function notifications(model: string): Promise<{ event: string; message: string }[]> {
  const history = await platform.client.workflow.getHandle(promotionWorkflowId(model)).fetchHistory();
  const out: { event: string; message: string }[] = [];
  for (const e of history.events ?? []) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name !== 'notify') continue;
    const payload = a.input?.payloads?.[0]?.data;
    if (payload)
      out.push(JSON.parse(Buffer.from(payload).toString('utf8')) as { event: string; message: string });
  }
  return out;
}

/** The runway CLI as a user runs it, against the test's Temporal, registry and keys. */
function runway(args: string[]): Promise<CliResult> {
  return runCliOn(platform.home, args, {
    RUNWAY_TASK_QUEUE: platform.taskQueue,
    RUNWAY_REGISTRY_DIR: path.join(platform.home, 'registry'),
    RUNWAY_KEY_DIR: keyDir,
  });
}

/** `runway approve MODEL --print` as an approver runs it: the payload to paste into the UI. */
async function printedApproval(model: string, as: string, comment: string): Promise<string> {
  const r = await runway(['approve', model, '--as', as, '--comment', comment, '--print']);
  if (r.code !== 0) throw new Error(`runway approve --print exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

describe('signed decisions', () => {
  it('runway keys init wrote a private key only its owner can read, and a line the keyring accepts', ({
    expect,
  }) => {
    expect(fs.statSync(bobFile).mode & 0o777).toBe(0o600);
    const ring = parseKeyring(YAML.parse(keyringYaml()), 'test');
    const bob = ring.entries.find((e) => e.name === 'bob');
    expect(bob?.fingerprint).toBe(fingerprint(crypto.createPublicKey(fs.readFileSync(bobFile))));
  });

  it(
    'refuses every forgery with its reason while the promotion keeps waiting; two keys approve, the pasted UI payload counts; the audit marks each',
    { timeout: 300_000 },
    async ({ expect }) => {
      const model = 'sg-main';
      const other = 'sg-other';
      const spec = signedSpec(model);
      const otherSpec = signedSpec(other);
      await platform.bootstrap(model, spec, { serve: false });
      await platform.bootstrap(other, otherSpec, { serve: false });
      const handle = await startSigned(spec);
      const otherHandle = await startSigned(otherSpec);
      const ctx = await contextAtApproval(model);
      const otherCtx = await contextAtApproval(other);
      expect(ctx.firstRunId).toBe((await handle.describe()).runId);
      const update = (a: ApprovalInput) => handle.executeUpdate(approveUpdate, { args: [a] });

      // In alice's name, no signature: by the UI's signal (ignored, recorded) and by update.
      await handle.signal(approveSignal, { approver: 'alice', comment: 'trust me' });
      expect(await refusal(update({ approver: 'alice' }))).toMatch(/^unsigned: this promotion requires/);
      // A valid signature of alice's, made for the other promotion, and one for another version.
      expect(await refusal(update(approval('alice', otherCtx, 'ok')))).toMatch(
        /signed for another promotion: model sg-other \(this is sg-main\)/,
      );
      expect(await refusal(update(approval('alice', { ...ctx, version: '3' }, 'ok')))).toMatch(
        /signed for another promotion: version 3 \(this is v2\)/,
      );
      // A tampered comment.
      const tampered = { ...approval('alice', ctx, 'looks fine'), comment: 'looks fine, ship v9 too' };
      expect(await refusal(update(tampered))).toMatch(/comment is not the one that was signed/);
      // alice's name with bob's key.
      const bobKey = crypto.createPrivateKey(fs.readFileSync(bobFile));
      expect(await refusal(update(approval('alice', ctx, 'ok', bobKey)))).toMatch(
        /belongs to bob, not alice/,
      );
      // The starter approves what it started, with the same key.
      expect(await refusal(update(approval('ci-bot', ctx, 'self')))).toMatch(
        /signed with the key that started this promotion \(SHA256:.*\) and the spec forbids self-approval/,
      );
      // Skipping the analysis is a decision too: an unsigned promote-full is ignored.
      await handle.signal(promoteFullSignal, { by: 'alice' });

      // alice, properly: counts 1 of 2.
      const good = approval('alice', ctx, 'reviewed the evaluation');
      const first = await update(good);
      expect(first).toMatchObject({ accepted: true, approvals: ['alice'], required: 2 });
      // The same signed payload again: its nonce is spent.
      expect(await refusal(update(good))).toMatch(/nonce [0-9a-f]{32} was already used/);
      // A fresh signature by the same key counts once.
      const again = await update(approval('alice', ctx, 'really'));
      expect(again.reason).toMatch(/key SHA256:.* had already approved; counted once/);
      expect(again.approvals).toEqual(['alice']);

      const status = await handle.query(statusQuery);
      expect(status.stage).toBe('approve');
      await expect
        .poll(() => notifications(model), { timeout: 15_000 })
        .toEqual(
          expect.arrayContaining([
            expect.objectContaining({
              event: 'approval_ignored',
              message: expect.stringMatching(/^unsigned/),
            }),
            // Authority is checked before the signature: no promote-full before the approvals.
            expect.objectContaining({
              event: 'promoteFull_ignored',
              message: expect.stringMatching(/still at approve: promote-full is refused, not queued/),
            }),
          ]),
        );

      // bob pastes what `runway approve --print` gave him into the UI: the approve Signal.
      const printed = JSON.parse(await printedApproval(model, 'bob', 'ship it')) as ApprovalInput;
      expect(printed).toMatchObject({
        approver: 'bob',
        comment: 'ship it',
        signed: { key: expect.any(String) },
      });
      await handle.signal(approveSignal, printed);
      await waitForStatus(platform, model, (s) => s.stage !== 'approve', 60_000);
      await handle.cancel();
      const result = await platform.result(model);
      expect(result.outcome).toBe('cancelled');
      expect(result.approvals.map((a) => [a.approver, a.via, a.key])).toEqual([
        ['alice', 'update', fingerprint(keys.alice.publicKey)],
        ['bob', 'signal', printed.signed?.key],
      ]);
      await recordHistory(platform.client, promotionWorkflowId(model), 'signed-approvals');
      await otherHandle.terminate('test done');

      // The audit, against a keyring in which alice's key was revoked after her approval.
      const revokedOn = new Date(Date.now() + 60_000).toISOString();
      const ring = parseKeyring(YAML.parse(keyringYaml(revokedOn)), 'audit keyring');
      const doc = await auditModel(platform.client, {
        model,
        replay: { workflowsPath: WORKFLOWS },
        keyring: ring,
      });
      const a = doc.promotions[0] as PromotionAudit;
      expect(doc.schemaVersion).toBe(2);
      expect(a.spec.identity).toBe('signed');
      expect(a.replay).toMatchObject({ checked: true, ok: true });
      expect(a.trigger.signature).toEqual({
        status: 'verified',
        fingerprint: fingerprint(keys['ci-bot'].publicKey),
        signer: 'ci-bot',
      });
      const marks = a.approvals.map((x) => [x.approver, x.via, x.signature.status, x.signature.reason ?? '']);
      expect(marks).toEqual([
        ['alice', 'signal', 'refused', expect.stringMatching(/^unsigned/)],
        ['alice', 'update', 'refused', expect.stringMatching(/unsigned/)],
        ['alice', 'update', 'refused', expect.stringMatching(/another promotion: model sg-other/)],
        ['alice', 'update', 'refused', expect.stringMatching(/another promotion: version 3/)],
        ['alice', 'update', 'refused', expect.stringMatching(/comment is not the one that was signed/)],
        ['alice', 'update', 'refused', expect.stringMatching(/belongs to bob/)],
        ['ci-bot', 'update', 'refused', expect.stringMatching(/key that started this promotion/)],
        ['alice', 'update', 'verified', ''],
        ['alice', 'update', 'refused', expect.stringMatching(/nonce .* already used/)],
        ['alice', 'update', 'verified', ''],
        ['bob', 'signal', 'verified', ''],
      ]);
      const alices = a.approvals.filter((x) => x.approver === 'alice' && x.signature.status === 'verified');
      for (const x of alices) {
        expect(x.signature).toEqual({
          status: 'verified',
          fingerprint: fingerprint(keys.alice.publicKey),
          signer: 'alice',
          revokedOn,
        });
      }
      expect(a.approvals.at(-1)?.signature).toEqual({
        status: 'verified',
        fingerprint: printed.signed?.key,
        signer: 'bob',
      });
      const md = auditMarkdown(doc);
      expect(md).toContain(`signed by a key revoked on ${revokedOn}`);
      expect(md).toMatch(/start verified SHA256:\S+ \(ci-bot\)/);
      // Without a keyring the audit says it could not check, not that the signatures hold.
      const blind = await auditModel(platform.client, { model, replay: false });
      expect(blind.promotions[0]?.approvals.at(-1)?.signature.status).toBe('unverifiable');
    },
  );

  it(
    'refuses an unsigned start under signed: rejected before anything deploys',
    { timeout: 180_000 },
    async ({ expect }) => {
      const model = 'sg-unsigned-start';
      const spec = signedSpec(model);
      await platform.bootstrap(model, spec, { serve: false });
      await platform.start(spec, '2', 'ci-bot');
      const result = await platform.result(model);
      expect(result.outcome).toBe('rejected');
      expect(result.reason).toMatch(
        /^start not verified: unsigned: this promotion requires a signed promote/,
      );
      const doc = await auditModel(platform.client, { model, replay: false });
      expect(doc.promotions[0]?.trigger.signature).toMatchObject({
        status: 'refused',
        reason: expect.stringMatching(/^unsigned/),
      });
    },
  );

  it(
    'from the CLI end to end: promote signs the start, approve and rollback sign theirs, a person without a key is told how to get one, audit verifies them',
    { timeout: 240_000 },
    async ({ expect }) => {
      const model = 'sg-cli';
      await platform.bootstrap(model, testSpec(model), { serve: false });
      const file = path.join(platform.home, `${model}.yaml`);
      fs.writeFileSync(
        file,
        YAML.stringify({
          name: model,
          owner: 'tests',
          model: {
            signature: {
              inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
              outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
            },
          },
          slos: { p99LatencyMs: 250, errorRate: 0.02 },
          evaluation: {
            dataset: path.join(projectRoot, 'demo', 'models', 'eval.json'),
            min: 0.8,
            maxRegression: 0.01,
          },
          approval: { required: 1, approvers: ['alice', 'bob', 'mallory'], identity: 'signed' },
        }),
      );
      const started = await runway(['promote', file, '--version', '2', '--as', 'ci-bot']);
      expect(started.code, started.stderr).toBe(0);
      await waitForStatus(platform, model, (s) => s.stage === 'approve', 90_000);
      const noKey = await runway(['approve', model, '--as', 'mallory']);
      expect(noKey.code).toBe(1);
      expect(noKey.stderr).toMatch(
        /no signing key for mallory at .*mallory\.key: create one with `runway keys init --as mallory`/,
      );
      const approved = await runway(['approve', model, '--as', 'alice', '--comment', 'numbers look right']);
      expect(approved.stdout.trim(), approved.stderr).toBe('approved by alice (1/1)');
      await waitForStatus(platform, model, (s) => s.stage !== 'approve', 60_000);
      const rolledBack = await runway(['rollback', model, '--as', 'bob', '--reason', 'pager 1234']);
      expect(rolledBack.code, rolledBack.stderr).toBe(0);
      const result = await platform.result(model);
      expect(`${result.outcome}: ${result.reason}`).toMatch(/by bob: pager 1234/);

      const ring = path.join(platform.home, 'keyring.yaml');
      const audit = await runway(['audit', model, '--format', 'json', '--no-replay', '--keyring', ring]);
      expect(audit.code, audit.stderr).toBe(0);
      const a = (JSON.parse(audit.stdout) as { promotions: PromotionAudit[] }).promotions[0]!;
      expect(a.trigger.signature).toMatchObject({ status: 'verified', signer: 'ci-bot' });
      expect(a.approvals.map((x) => [x.approver, x.signature.status, x.signature.signer])).toEqual([
        ['alice', 'verified', 'alice'],
      ]);
      expect(a.manualActions.map((m) => [m.action, m.by, m.signature.status, m.signature.signer])).toEqual([
        ['rollback', 'bob', 'verified', 'bob'],
      ]);
    },
  );

  it(
    'a key revoked while the promotion waits signs nothing from then on: the keyring is read at every verification',
    { timeout: 180_000 },
    async ({ expect }) => {
      const model = 'sg-revoked';
      let before = '';
      const spec = signedSpec(model);
      await platform.bootstrap(model, spec, { serve: false });
      const handle = await startSigned(spec);
      const ctx = await contextAtApproval(model);
      const ring = path.join(platform.home, 'keyring.yaml');
      before = fs.readFileSync(ring, 'utf8');
      const revokedAt = new Date().toISOString();
      fs.writeFileSync(ring, keyringYaml(revokedAt));
      try {
        const refused = await refusal(
          handle.executeUpdate(approveUpdate, { args: [approval('alice', ctx, 'too late')] }),
        );
        expect(refused).toBe(`key ${fingerprint(keys.alice.publicKey)} (alice) was revoked on ${revokedAt}`);
      } finally {
        fs.writeFileSync(ring, before);
      }
      // bob's key was not revoked: his approval counts.
      const bobKey = crypto.createPrivateKey(fs.readFileSync(bobFile));
      const bobs = await handle.executeUpdate(approveUpdate, {
        args: [{ approver: 'bob', comment: 'ok', signed: sign(bobKey, 'approve', 'bob', ctx, 'ok') }],
      });
      expect(bobs).toMatchObject({ accepted: true, approvals: ['bob'] });
      // With her key back, alice rejects from the CLI: a signed reject ends it.
      const rejected = await runway(['reject', model, '--as', 'alice', '--reason', 'wrong features']);
      expect(rejected.stdout.trim(), rejected.stderr).toBe('rejected by alice: wrong features');
      expect(await platform.result(model)).toMatchObject({
        outcome: 'rejected',
        reason: 'rejected by alice: wrong features',
      });
      const doc = await auditModel(platform.client, {
        model,
        replay: false,
        keyring: parseKeyring(YAML.parse(before), 'keyring'),
      });
      expect(doc.promotions[0]?.approvals.map((x) => [x.decision, x.approver, x.signature.status])).toEqual([
        ['approve', 'alice', 'refused'],
        ['approve', 'bob', 'verified'],
        ['reject', 'alice', 'verified'],
      ]);
    },
  );

  it(
    'a signed promote-full from the CLI counts: recorded with who, and the audit verifies it',
    { timeout: 240_000 },
    async ({ expect }) => {
      const model = 'sg-full';
      const spec = testSpec(model, {
        approval: { required: 1, approvers: ['alice', 'bob'], identity: 'signed' },
        shadow: { duration: '60s' },
      });
      await platform.bootstrap(model, spec);
      platform.traffic(model, 20);
      const handle = await startSigned(spec);
      const ctx = await contextAtApproval(model);
      await handle.executeUpdate(approveUpdate, { args: [approval('alice', ctx, 'ok')] });
      // Past the approval, in the shadow: skipping the rest is bob's signed decision.
      await waitForStatus(platform, model, (s) => s.stage === 'shadow', 120_000);
      const full = await runway(['promote-full', model, '--as', 'bob', '--reason', 'hotfix']);
      expect(full.code, full.stderr).toBe(0);
      const result = await platform.result(model);
      expect(result.outcome).toBe('promoted');
      expect(result.reason).toMatch(/promoted fully by bob/);
      const doc = await auditModel(platform.client, {
        model,
        replay: false,
        keyring: parseKeyring(YAML.parse(keyringYaml()), 'keyring'),
      });
      const action = doc.promotions[0]?.manualActions.find((m) => m.action === 'promoteFull');
      expect(action?.signature).toMatchObject({ status: 'verified', signer: 'bob' });
    },
  );
});

/** The audit builder on histories recorded from real promotions (test/fixtures/audit/). */
import fs from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { auditMarkdown } from '../../audit/markdown';
import { auditDocument, buildPromotionAudit, type RunHistory } from '../../audit/report';
import type { HistoryEvent } from '../../audit/events';
import { projectRoot } from '../../common/paths';
import { historyFromJSON } from '../helpers/histories';

const dir = path.join(projectRoot, 'test', 'fixtures', 'audit');
function chain(name: string): RunHistory[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(`${name}.run`))
    .sort()
    .map((f) => ({
      runId: f,
      events: historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))).events ?? [],
    }));
}

describe('buildPromotionAudit', () => {
  it('follows a continue-as-new chain: approvals, pause, traffic with its numbers, outcome', () => {
    const a = buildPromotionAudit('promotion:au-cancel', chain('approve-pause-cancel'));
    expect(a.runs.map((r) => r.closedAs)).toEqual(['continued_as_new', 'completed']);
    expect(a).toMatchObject({ model: 'au-cancel', version: '2' });
    expect(a.trigger).toMatchObject({
      triggeredBy: 'ci-bot',
      identity: 'ci@runner-8 (runway cli)',
      metadata: { commit: 'deadbeef', pipeline: 'https://ci.example/p/42' },
    });
    expect(a.artifacts.candidate?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(a.evaluation?.verdict).toMatchObject({ check: 'evaluation', result: 'pass' });
    expect(a.approvals.map((x) => [x.approver, x.via, x.identity, x.accepted])).toEqual([
      ['mallory', 'signal', 'mallory@evil (web ui)', false],
      ['alice', 'update', 'alice@laptop (runway cli)', true],
    ]);
    expect(a.pauses).toEqual([expect.objectContaining({ kind: 'manual', by: 'dave' })]);
    expect(a.trafficChanges.at(0)).toMatchObject({ stage: 'shadow', weights: { v1: 100, v2: 0 } });
    expect(a.trafficChanges.at(-1)).toMatchObject({ weights: { v1: 100 }, reason: 'rollback: cancelled' });
    const decided = a.trafficChanges.filter((c) => c.basedOn.length > 0);
    expect(decided.length).toBeGreaterThan(0);
    for (const c of decided)
      for (const b of c.basedOn)
        expect(b.guard).toMatchObject({ result: expect.any(String), reason: expect.any(String) });
    // analyses carry verdicts, not the raw router counters
    expect(JSON.stringify(a.analyses)).not.toContain('"snapshot"');
    expect(a.rollbacks).toEqual([expect.objectContaining({ kind: 'automatic', reason: 'cancelled' })]);
    expect(a.outcome).toMatchObject({ status: 'completed', outcome: 'cancelled', reason: 'cancelled' });
    expect(a.replay.checked).toBe(false);
  });

  it('a rejection at evaluation has its numbers and no traffic change', () => {
    const a = buildPromotionAudit('promotion:au-eval', chain('evaluation-rejected'));
    expect(a.evaluation?.verdict).toMatchObject({ result: 'fail', candidate: { version: '3' } });
    expect(a.trafficChanges).toEqual([]);
    expect(a.outcome.outcome).toBe('rejected');
    expect(a.outcome.reason).toMatch(/evaluation failed/);
  });

  it('is deterministic and renders Markdown naming who did what', () => {
    const runs = chain('approve-pause-cancel');
    const one = buildPromotionAudit('w', runs);
    expect(buildPromotionAudit('w', runs)).toEqual(one);
    const md = auditMarkdown(auditDocument('au-cancel', [one], new Date(0)));
    expect(md).toContain('alice@laptop (runway cli)');
    expect(md).toContain('mallory is not an approver');
    expect(md).toContain('rollback: cancelled');
  });

  it('an empty or foreign history gives an empty report, not an exception', () => {
    expect(buildPromotionAudit('w', [{ runId: 'r', events: [] }]).outcome.status).toBe('running');
    const odd = buildPromotionAudit('w', [
      {
        runId: 'r',
        events: [
          {
            eventId: null,
            workflowExecutionStartedEventAttributes: {
              input: { payloads: [{ data: new Uint8Array([1, 2]) }] },
            },
          },
        ],
      },
    ]);
    expect(odd.trigger.triggeredBy).toBeNull();
  });
});

describe('controls and the platform policy in the audit', () => {
  /** A recorded promotion from the replay fixtures (test/fixtures/histories/). */
  const recorded = (name: string): RunHistory[] => {
    const file = path.join(projectRoot, 'test', 'fixtures', 'histories', `${name}.json`);
    return [{ runId: name, events: historyFromJSON(JSON.parse(fs.readFileSync(file, 'utf8'))).events ?? [] }];
  };

  it('marks each refused control with who and why, and shows the policy in force', () => {
    const a = buildPromotionAudit('promotion:ho-fraud', recorded('authority-hostile-promote-full'));
    expect(a.manualActions.map((m) => [m.action, m.by, m.via, m.accepted])).toEqual([
      ['promoteFull', 'bob', 'update', false],
      ['promoteFull', 'alice', 'update', false],
    ]);
    expect(a.manualActions[0]?.verdict).toBe(
      'bob may not promote-full ho-fraud: it skips the analysis, so only its approvers or operators may (alice)',
    );
    expect(a.policy).toMatchObject({ matched: ['ho-*', '*'], approvers: ['alice'] });
    expect(a.outcome).toMatchObject({ outcome: 'promoted', reason: 'all steps passed' });
    const md = auditMarkdown(auditDocument('ho-fraud', [a], new Date(0)));
    expect(md).toMatch(
      /\*\*promoteFull\*\* by bob via update .* — \*\*refused\*\*: bob may not promote-full/,
    );
    expect(md).toMatch(/- platform policy: entries `ho-\*`, `\*`: minApprovals 1 \(ho-\*\)/);
  });

  it('a refused signal is matched with the notification that refused it: the stub hostile sequence', () => {
    const a = buildPromotionAudit('promotion:ho', recorded('promote-full-refused-hostile'));
    expect(a.manualActions.map((m) => [m.via, m.accepted, m.reason])).toEqual([
      ['update', false, undefined],
      ['signal', false, 'trust me'],
    ]);
    expect(a.manualActions[1]?.verdict).toMatch(/^bob may not promote-full ho-\d+/);
  });

  it('a spec the policy refused: the violations, and no traffic change', () => {
    const a = buildPromotionAudit('promotion:weak-scorer', recorded('policy-refused-at-start'));
    expect(a.policy?.violations?.map((v) => `${v.entry}: ${v.rule} ${v.field}`)).toEqual([
      'weak-*: minApprovals approval.required',
      'weak-*: requireShadow shadow.enabled',
      '*: allowProceedOnInconclusive rollback.onInconclusive',
    ]);
    expect(a.trafficChanges).toEqual([]);
    expect(a.outcome.outcome).toBe('rejected');
    expect(auditMarkdown(auditDocument('weak-scorer', [a], new Date(0)))).toMatch(
      /platform policy: entries `weak-\*`, `\*`: .* — \*\*refused\*\*: approval\.required is 1, expected at least 2 \(minApprovals\)/,
    );
  });
});

describe('refused brakes in the audit', () => {
  const payloads = (v: unknown) => ({ payloads: [defaultPayloadConverter.toPayload(v)] });
  const at = (s: number) => ({ seconds: s, nanos: 0 });
  const signal = (id: number, name: string, input: unknown) => ({
    eventId: id,
    eventTime: at(id),
    workflowExecutionSignaledEventAttributes: { signalName: name, input: payloads(input), identity: 'x' },
  });
  const ignored = (id: number, control: string, payload: unknown) => ({
    eventId: id,
    eventTime: at(id),
    activityTaskScheduledEventAttributes: {
      activityType: { name: 'notify' },
      input: payloads({ event: `${control}_ignored`, message: `no (${control})`, details: { payload } }),
    },
  });

  it('a refused pause opens no pause, a refused resume closes none', () => {
    const events = [
      signal(1, 'pause', { by: 'mallory' }),
      ignored(2, 'pause', { by: 'mallory' }),
      signal(3, 'pause', { by: 'dave', reason: 'dashboards' }),
      signal(4, 'resume', { by: 'mallory' }),
      ignored(5, 'resume', { by: 'mallory' }),
    ];
    // Hand-written events: numbers where the proto types say Long, as JSON histories have them.
    const a = buildPromotionAudit('promotion:brakes', [
      { runId: 'r', events: events as unknown as HistoryEvent[] },
    ]);
    expect(a.manualActions.map((m) => [m.action, m.by, m.accepted, m.verdict])).toEqual([
      ['pause', 'mallory', false, 'no (pause)'],
      ['pause', 'dave', true, undefined],
      ['resume', 'mallory', false, 'no (resume)'],
    ]);
    expect(a.pauses).toEqual([expect.objectContaining({ by: 'dave', reason: 'dashboards' })]);
    expect(a.pauses[0]?.resumedAt).toBeUndefined();
  });
});

describe('notifications in the audit', () => {
  it('shows what each webhook answered, from the notify activity results', () => {
    const file = path.join(
      projectRoot,
      'test',
      'fixtures',
      'histories',
      'notify-rollback-webhook-hangs.json',
    );
    const events = historyFromJSON(JSON.parse(fs.readFileSync(file, 'utf8'))).events ?? [];
    const a = buildPromotionAudit('promotion:fd-notify-hang', [{ runId: 'r1', events }]);
    expect(a.notifications.map((n) => n.event)).toEqual(['approval_requested', 'promotion_rolled_back']);
    for (const n of a.notifications) {
      expect(n.deliveries).toEqual([
        expect.objectContaining({ webhook: 'oncall-slack', ok: false, error: 'timed out' }),
        expect.objectContaining({ webhook: 'audit-json', ok: true, attempts: 1, status: 200 }),
        // Named by the spec's notify.webhooks, absent from the platform config.
        expect.objectContaining({ webhook: 'ml-oncall', ok: false, attempts: 0 }),
      ]);
    }
  });
});

/**
 * Notifications from a real promotion (real Temporal, router, fleet and onnxruntime) while one of
 * the two configured webhooks hangs: the approval request reaches the live receiver and does not
 * hold the approval step; a manual rollback mid-canary puts traffic back on the baseline at once
 * and the promotion ends within the notification deadline, however long the dead endpoint takes;
 * the history records which webhook was told and which was not; and the secret URLs appear in no
 * worker log line and nowhere in the history.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NotifyResult } from '../../activities/notify';
import { NotificationSchema } from '../../notifications/payload';
import { promotionWorkflowId, rollbackSignal } from '../../workflows/api';
import { testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';
import { recordHistory } from '../helpers/record';
import { closeReceivers, startReceiver, type Receiver } from '../helpers/webhook-receiver';

const DEADLINE_MS = 6000;
const lines: string[] = [];
let hung: Receiver;
let live: Receiver;

// Registered before the platform's hooks, so the receivers exist when its config is written.
beforeAll(async () => {
  hung = await startReceiver('hang');
  live = await startReceiver('ok');
});
afterAll(closeReceivers);

const platform = usePromotionPlatform({
  logSink: (l) => lines.push(l),
  platformConfig: (home) => {
    const file = (name: string, url: string): string => {
      const f = path.join(home, `${name}.url`);
      fs.writeFileSync(f, url, { mode: 0o600 });
      return f;
    };
    return {
      notifications: {
        timeoutMs: 2000,
        attempts: 5,
        backoffMs: 200,
        deadlineMs: DEADLINE_MS,
        webhooks: [
          { name: 'oncall-slack', format: 'slack', urlFile: file('slack', hung.url) },
          { name: 'audit-json', format: 'json', urlFile: file('json', live.url) },
        ],
      },
    };
  },
});

/** Every payload in the history as text (they are JSON bytes), with the rest of it. */
function payloadText(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (Array.isArray(value)) return value.map(payloadText).join('\n');
  if (value && typeof value === 'object') return Object.values(value).map(payloadText).join('\n');
  return String(value);
}

const events = (r: Receiver): string[] =>
  r.received.map((x) => {
    const b = x.body as { event?: string; text?: string };
    return b.event ?? b.text ?? '?';
  });

describe('notifications from a promotion', () => {
  it('a hanging webhook delays neither the approval nor the rollback', { timeout: 240_000 }, async () => {
    const model = 'fd-notify-hang';
    const spec = testSpec(model, {
      // The spec picks its webhooks by name; one the platform lacks is recorded as not delivered.
      notify: { webhooks: ['oncall-slack', 'audit-json', 'ml-oncall'] },
      shadow: { enabled: false },
      canary: {
        steps: [
          { weight: 10, pause: '2m' },
          { weight: 100, pause: '0s' },
        ],
      },
    });
    await platform.bootstrap(model, spec);
    const traffic = platform.traffic(model, 40);
    await platform.start(spec, '2');
    await platform.approveWhenAsked(model);
    const approvedAt = Date.now();
    await waitForStatus(platform, model, (s) => s.stage !== 'approve', 60_000);
    // The approval notification to the hanging endpoint is still being tried: the step moved on.
    expect(Date.now() - approvedAt).toBeLessThan(DEADLINE_MS);
    await expect.poll(() => events(live), { timeout: 10_000 }).toContain('approval_requested');

    await waitForStatus(platform, model, (s) => s.stage === 'canary' && s.weights.v2 === 10, 120_000);
    const asked = Date.now();
    await platform.client.workflow
      .getHandle(promotionWorkflowId(model))
      .signal(rollbackSignal, { by: 'carol', reason: 'pager 1234' });
    // Traffic is back on the baseline before any notification is even attempted.
    await expect
      .poll(() => platform.routeOf(model), { timeout: 15_000, interval: 100 })
      .toEqual([['v1', 100]]);
    const routedBackMs = Date.now() - asked;
    const result = await platform.result(model);
    const endedMs = Date.now() - asked;
    await traffic.stop();
    await recordHistory(platform.client, promotionWorkflowId(model), 'notify-rollback-webhook-hangs');
    console.info(
      `rollback with a hanging webhook: traffic back in ${routedBackMs} ms, promotion ended in ${endedMs} ms`,
    );

    expect(result).toMatchObject({ outcome: 'rolled_back', reason: 'manual rollback by carol: pager 1234' });
    expect(routedBackMs).toBeLessThan(10_000);
    // The end waits at most for the notification deadline (the dead endpoint's share of it).
    expect(endedMs).toBeLessThan(routedBackMs + DEADLINE_MS + 5_000);

    // The live receiver heard both; the hung one was tried for both and never answered.
    expect(events(live)).toEqual(['approval_requested', 'promotion_rolled_back']);
    const rolled = NotificationSchema.parse(live.received[1]!.body);
    expect(rolled).toMatchObject({
      kind: 'rolled_back',
      model,
      version: '2',
      workflow: { id: promotionWorkflowId(model) },
      details: { stage: 'canary' },
    });
    expect(hung.received.map((r) => (r.body as { text: string }).text)).toEqual(
      expect.arrayContaining([
        expect.stringContaining(`${model} v2 waits for approval`),
        expect.stringContaining(`${model} v2 rolled back: manual rollback by carol`),
      ]),
    );

    // The history says who was told: the activity's results.
    const history = await platform.client.workflow.getHandle(promotionWorkflowId(model)).fetchHistory();
    const notifyIds = new Set(
      (history.events ?? [])
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'notify')
        .map((e) => String(e.eventId)),
    );
    const results: NotifyResult[] = (history.events ?? [])
      .map((e) => e.activityTaskCompletedEventAttributes)
      .filter((a) => a && notifyIds.has(String(a.scheduledEventId)))
      .map((a) => JSON.parse(Buffer.from(a!.result!.payloads![0]!.data!).toString('utf8')) as NotifyResult);
    expect(results).toHaveLength(2);
    for (const r of results) {
      const byName = Object.fromEntries(r.deliveries.map((d) => [d.webhook, d]));
      expect(byName['audit-json']).toMatchObject({ ok: true, attempts: 1, status: 200 });
      expect(byName['oncall-slack']).toMatchObject({ ok: false, error: 'timed out' });
      expect(byName['oncall-slack']!.ms).toBeLessThanOrEqual(DEADLINE_MS + 500);
      expect(byName['ml-oncall']).toMatchObject({ ok: false, attempts: 0 });
    }

    // Counted for the dashboard, by the last stage reached.
    expect(await platform.deps.workerMetrics!.registry.metrics()).toMatch(
      new RegExp(`runway_promotions_total\\{model="${model}",outcome="rolled_back",stage="canary"\\} 1`),
    );

    // The secret URLs are nowhere: not in the worker's log, not in the history.
    const everything = lines.join('\n') + payloadText(history);
    expect(
      lines.some((l) => l.includes('notification not delivered') && l.includes('webhook=oncall-slack')),
    ).toBe(true);
    for (const r of [hung, live]) {
      expect(everything).not.toContain(r.secret);
      expect(everything).not.toContain(r.secret.split('/').at(-1));
    }
  });
});

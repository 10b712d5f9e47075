/**
 * Webhook notifications against real HTTP receivers on loopback, configured the way a platform
 * team does (platform.yaml, URLs in files or the environment) and sent by the real `notify`
 * activity that platformDeps wires: runway's JSON, Slack and Teams payloads; filters by event,
 * kind and model; retries with backoff on 5xx and 429, none on 404; a receiver that hangs and
 * one that answers 500 are given up within the configured bounds and reported, never thrown; and
 * no secret URL reaches a log line, a result, an error or the config printout.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifyActivities } from '../../activities/notify';
import type { NotifyInput } from '../../activities/contracts';
import { createLogger } from '../../common/log';
import { projectRoot, runwayBin } from '../../common/paths';
import { NotificationSchema, notificationJsonSchema } from '../../notifications/payload';
import { loadPlatformConfig, redacted, type PlatformConfig } from '../../workers/config';
import { platformDeps } from '../../workers/platform';
import { testSpec } from '../helpers/promotion';
import { closeReceivers, startReceiver, type Receiver } from '../helpers/webhook-receiver';

const lines: string[] = [];
const logger = createLogger('test', (l) => lines.push(l));
const receivers: Receiver[] = [];
let dir: string;

afterAll(async () => {
  await closeReceivers();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-notify-'));
});

async function receiver(...args: Parameters<typeof startReceiver>): Promise<Receiver> {
  const r = await startReceiver(...args);
  receivers.push(r);
  return r;
}

/** Writes the URL to a 0600 file, as a mounted Secret would hold it. */
function urlFile(name: string, url: string): string {
  const file = path.join(dir, `${name}.url`);
  fs.writeFileSync(file, url + '\n', { mode: 0o600 });
  return file;
}

/** platform.yaml with these webhooks, loaded as the worker loads it. */
function configWith(
  notifications: Record<string, unknown>,
  env: Record<string, string> = {},
): PlatformConfig {
  const file = path.join(dir, `platform-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, YAML.stringify({ notifications }));
  return loadPlatformConfig({ file, env: { RUNWAY_HOME: dir, ...env } });
}

function notifier(config: PlatformConfig) {
  const deps = platformDeps(config, { url: 'http://127.0.0.1:9', token: 'unused' }, logger);
  return { notify: notifyActivities(deps).notify, deps };
}

const rolledBack: NotifyInput = {
  model: 'fraud-detector',
  version: '7',
  event: 'promotion_rolled_back',
  message: 'automatic rollback at canary after 3 failed intervals — slo: error rate 9% over the limit 2%',
  details: { stage: 'canary', weights: { v6: 100, v7: 0 } },
};

describe('webhook payloads', () => {
  it('sends runway JSON, Slack and Teams payloads, each to its endpoint', async () => {
    const [json, slack, teams] = [await receiver('ok'), await receiver('ok'), await receiver('ok')];
    const config = configWith(
      {
        webhooks: [
          { name: 'audit-json', url: json.url },
          { name: 'oncall-slack', format: 'slack', urlFile: urlFile('slack', slack.url) },
          { name: 'ml-teams', format: 'teams', urlEnv: 'TEAMS_WEBHOOK_URL' },
        ],
      },
      { TEAMS_WEBHOOK_URL: teams.url },
    );
    const { notify } = notifier(config);
    const result = await notify(rolledBack);
    expect(result.deliveries.map((d) => [d.webhook, d.ok, d.attempts])).toEqual([
      ['audit-json', true, 1],
      ['oncall-slack', true, 1],
      ['ml-teams', true, 1],
    ]);

    const payload = NotificationSchema.parse(json.received[0]!.body);
    expect(payload).toMatchObject({
      schema: 'runway.notification/v1',
      event: 'promotion_rolled_back',
      kind: 'rolled_back',
      severity: 'critical',
      title: 'fraud-detector v7 rolled back',
      message: rolledBack.message,
      details: rolledBack.details,
    });
    expect(json.received[0]!.headers['idempotency-key']).toBe(payload.id);
    expect(json.received[0]!.headers['content-type']).toBe('application/json');

    const s = slack.received[0]!.body as {
      text: string;
      blocks: Array<{ type: string; fields?: unknown[] }>;
    };
    expect(s.text).toBe(`fraud-detector v7 rolled back: ${rolledBack.message}`);
    expect(s.blocks.map((b) => b.type)).toEqual(['section', 'section', 'context']);
    expect(s.blocks[1]!.fields).toEqual(
      expect.arrayContaining([{ type: 'mrkdwn', text: '*stage*\ncanary' }]),
    );

    const t = teams.received[0]!.body as {
      type: string;
      attachments: Array<{
        contentType: string;
        content: { type: string; body: Array<Record<string, unknown>> };
      }>;
    };
    expect(t.type).toBe('message');
    expect(t.attachments[0]!.contentType).toBe('application/vnd.microsoft.card.adaptive');
    const card = t.attachments[0]!.content;
    expect(card.type).toBe('AdaptiveCard');
    expect(card.body[0]).toMatchObject({ text: 'fraud-detector v7 rolled back', color: 'Attention' });
    expect(card.body[2]!.facts).toEqual(
      expect.arrayContaining([{ title: 'model', value: 'fraud-detector' }]),
    );
  });

  it('the committed JSON Schema is the one the payload is checked against', () => {
    const committed = JSON.parse(
      fs.readFileSync(path.join(projectRoot, 'docs/notification.schema.json'), 'utf8'),
    );
    expect(committed).toEqual(notificationJsonSchema());
    expect(committed.properties.kind.enum).toEqual(
      expect.arrayContaining([
        'approval_requested',
        'paused',
        'rolled_back',
        'promoted',
        'watch_alert',
        'drift',
      ]),
    );
  });

  it('sends each webhook only the events, kinds and models it asked for', async () => {
    const pager = await receiver('ok');
    const chat = await receiver('ok');
    const { notify } = notifier(
      configWith({
        webhooks: [
          { name: 'pager', url: pager.url, events: ['rolled_back', 'watch_alert'] },
          { name: 'chat', url: chat.url, models: ['risk-scorer'] },
        ],
      }),
    );
    for (const event of [
      'approval_requested',
      'promotion_rolled_back',
      'rollback_done',
      'watch_alert',
      'drift',
    ]) {
      await notify({ model: 'fraud-detector', version: '7', event, message: event });
    }
    await notify({ model: 'risk-scorer', version: '2', event: 'drift', message: 'psi 0.31 on amount' });
    expect(pager.received.map((r) => (r.body as { event: string }).event)).toEqual([
      'promotion_rolled_back',
      'rollback_done',
      'watch_alert',
    ]);
    expect(chat.received.map((r) => (r.body as { model: string; kind: string }).kind)).toEqual(['drift']);
  });
});

describe('the ModelSpec chooses among the platform webhooks', () => {
  it('notify.webhooks and notify.events narrow; an unknown name is reported, not thrown', async () => {
    const pager = await receiver('ok');
    const chat = await receiver('ok');
    const { notify } = notifier(
      configWith({
        webhooks: [
          { name: 'pager', url: pager.url },
          { name: 'chat', url: chat.url },
        ],
      }),
    );
    const spec = testSpec('fraud-detector', {
      notify: { webhooks: ['pager', 'ml-oncall'], events: ['rolled_back'] },
    });
    const route = spec.notify;
    expect(route).toEqual({ webhooks: ['pager', 'ml-oncall'], events: ['rolled_back'] });
    const skipped = await notify({ ...rolledBack, event: 'approval_requested', route });
    expect(skipped.deliveries).toEqual([]);
    const { deliveries } = await notify({ ...rolledBack, route });
    expect(deliveries.map((d) => [d.webhook, d.ok])).toEqual([
      ['pager', true],
      ['ml-oncall', false],
    ]);
    expect(deliveries[1]!.error).toBe(
      `the spec's notify.webhooks names "ml-oncall", which the platform config does not have (notifications.webhooks: pager, chat)`,
    );
    expect(pager.received).toHaveLength(1);
    expect(chat.received).toHaveLength(0);
    expect(() => testSpec('x', { notify: { events: ['rollback'] } })).toThrow(
      /notify\.events\[0\]: expected an event or kind/,
    );
  });
});

describe('delivery', () => {
  it('retries a 500 with backoff, then reports it; the other webhook is delivered meanwhile', async () => {
    const broken = await receiver({ status: 500 });
    const fine = await receiver('ok');
    const { notify, deps } = notifier(
      configWith({
        attempts: 3,
        backoffMs: 200,
        webhooks: [
          { name: 'broken', url: broken.url },
          { name: 'fine', url: fine.url },
        ],
      }),
    );
    const t0 = Date.now();
    const { deliveries } = await notify(rolledBack);
    const ms = Date.now() - t0;
    const [b, f] = deliveries;
    expect(b).toMatchObject({ webhook: 'broken', ok: false, attempts: 3, status: 500 });
    // The receiver echoed its secret path in the answer; the error keeps the rest of it.
    expect(b!.error).toBe('HTTP 500: answered 500 for [redacted]');
    expect(f).toMatchObject({ webhook: 'fine', ok: true, attempts: 1 });
    expect(broken.received).toHaveLength(3);
    // Backoff 200 ms then 400 ms (±20%) between the three attempts.
    const gaps = broken.received.slice(1).map((r, i) => r.at - broken.received[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(150);
    expect(gaps[1]).toBeGreaterThanOrEqual(300);
    expect(ms).toBeLessThan(10_000);
    const text = await deps.workerMetrics!.registry.metrics();
    expect(text).toMatch(
      /runway_notifications_total\{webhook="broken",event="promotion_rolled_back",result="failed"\} 1/,
    );
    expect(text).toMatch(
      /runway_notifications_total\{webhook="fine",event="promotion_rolled_back",result="delivered"\} 1/,
    );
    expect(lines.some((l) => l.includes('notification not delivered') && l.includes('webhook=broken'))).toBe(
      true,
    );
  });

  it('gives up on a receiver that hangs within the deadline, and says so', async () => {
    const hung = await receiver('hang');
    const { notify } = notifier(
      configWith({
        timeoutMs: 400,
        attempts: 10,
        backoffMs: 100,
        deadlineMs: 2000,
        webhooks: [{ name: 'hung', format: 'slack', url: hung.url }],
      }),
    );
    const t0 = Date.now();
    const { deliveries } = await notify(rolledBack);
    const ms = Date.now() - t0;
    expect(deliveries[0]).toMatchObject({ webhook: 'hung', ok: false, error: 'timed out' });
    expect(deliveries[0]!.attempts).toBeGreaterThanOrEqual(2);
    expect(deliveries[0]!.attempts).toBeLessThan(10); // the deadline, not the attempts, ended it
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThan(2000 + 1500);
    // runway hung up on each attempt rather than leaving sockets open.
    await expect.poll(() => hung.abandoned, { timeout: 5000 }).toBe(deliveries[0]!.attempts);
  });

  it('waits for Retry-After on a 429 and for backoff on a 503, then delivers', async () => {
    const limited = await receiver((n) => (n === 1 ? { status: 429, retryAfter: 1 } : 'ok'));
    const flaky = await receiver((n) => (n < 3 ? { status: 503 } : 'ok'));
    const { notify } = notifier(
      configWith({
        backoffMs: 50,
        webhooks: [
          { name: 'limited', url: limited.url },
          { name: 'flaky', url: flaky.url },
        ],
      }),
    );
    const { deliveries } = await notify(rolledBack);
    expect(deliveries.map((d) => [d.webhook, d.ok, d.attempts])).toEqual([
      ['limited', true, 2],
      ['flaky', true, 3],
    ]);
    expect(limited.received[1]!.at - limited.received[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it('does not retry what retrying cannot fix (404), and reports a refused connection', async () => {
    const gone = await receiver({ status: 404 });
    const closed = await receiver('ok');
    await closed.close();
    const { notify } = notifier(
      configWith({
        attempts: 3,
        backoffMs: 50,
        webhooks: [
          { name: 'gone', url: gone.url },
          { name: 'closed', url: closed.url },
        ],
      }),
    );
    const [g, c] = (await notify(rolledBack)).deliveries;
    expect(g).toMatchObject({ ok: false, attempts: 1, status: 404 });
    expect(c).toMatchObject({ ok: false, attempts: 3 });
    expect(c!.error).toMatch(/ECONNREFUSED/);
  });
});

describe('configuration', () => {
  it('names the field, and never repeats a secret, when a webhook is misconfigured', () => {
    const secret = 'https://hooks.example.com/services/T000/B000/very-secret-part';
    const bad =
      (n: Record<string, unknown>, env: Record<string, string> = {}) =>
      () =>
        configWith(n, env);
    expect(bad({ webhooks: [{ name: 'x', urlEnv: 'NOT_SET_ANYWHERE' }] })).toThrow(
      /notifications\.webhooks\.0\.urlEnv: environment variable NOT_SET_ANYWHERE is not set/,
    );
    expect(bad({ webhooks: [{ name: 'x', url: secret, urlEnv: 'A' }] })).toThrow(
      /notifications\.webhooks\.0: set exactly one of url, urlFile or urlEnv/,
    );
    expect(bad({ webhooks: [{ name: 'x', url: secret, events: ['rollback'] }] })).toThrow(
      /notifications\.webhooks\.0\.events\.0: expected an event or kind: .*rolled_back/,
    );
    expect(bad({ webhooks: [{ name: 'x', url: secret, format: 'discord' }] })).toThrow(
      /notifications\.webhooks\.0\.format/,
    );
    expect(
      bad({ webhooks: [{ name: 'x', urlEnv: 'HOOK' }] }, { HOOK: 'not a url very-secret-part' }),
    ).toThrow(/notifications\.webhooks\.0 \(x\): the URL in \$HOOK is not an absolute http\(s\) URL/);
    expect(bad({ webhooks: [{ name: 'x', urlFile: path.join(dir, 'missing') }] })).toThrow(
      /notifications\.webhooks\.0\.urlFile: cannot read/,
    );
    expect(bad({ deadlineMs: 60_000 })).toThrow(/notifications\.deadlineMs: expected at most 25000/);
    for (const f of [
      bad({ webhooks: [{ name: 'x', url: secret, urlEnv: 'A' }] }),
      bad({ webhooks: [{ name: 'x', urlEnv: 'HOOK' }] }, { HOOK: 'not a url very-secret-part' }),
    ]) {
      expect(() => f()).toThrow();
      try {
        f();
      } catch (err) {
        expect((err as Error).message).not.toContain('very-secret-part');
      }
    }
  });
});

/** Runs `runway worker` on a config (YAML) until `until` sees its stderr, or it exits. */
function runWorker(
  config: string,
  env: Record<string, string>,
  until: (stderr: string) => Promise<boolean>,
): Promise<{ code: number | null; stderr: string }> {
  const file = path.join(dir, `worker-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, config);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runwayBin, 'worker'], {
      env: { PATH: process.env.PATH, HOME: dir, RUNWAY_HOME: dir, RUNWAY_CONFIG: file, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let done = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (done) return;
      void until(stderr).then((stop) => {
        if (stop && !done) {
          done = true;
          child.kill('SIGTERM');
        }
      });
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('runway worker', () => {
  // Nothing listens on the Temporal address: the worker gets as far as connecting, then exits.
  const base = 'temporal: { address: 127.0.0.1:9 }\nrouter: { adminUrl: http://127.0.0.1:9 }\n';

  it('refuses a webhook whose URL variable is unset, naming the field', { timeout: 90_000 }, async () => {
    const r = await runWorker(
      base + 'notifications: { webhooks: [{ name: ml-teams, format: teams, urlEnv: TEAMS_WEBHOOK_URL }] }\n',
      {},
      async () => false,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      /notifications\.webhooks\.0\.urlEnv: environment variable TEAMS_WEBHOOK_URL is not set/,
    );
  });

  it(
    'prints its config with the webhook URL redacted and serves /metrics on worker.metricsListen',
    { timeout: 90_000 },
    async () => {
      const hook = await receiver('ok');
      let metrics = '';
      const r = await runWorker(
        base +
          'worker: { metricsListen: 127.0.0.1:0 }\n' +
          'notifications: { webhooks: [{ name: ml-teams, format: teams, urlEnv: TEAMS_WEBHOOK_URL }] }\n',
        { TEAMS_WEBHOOK_URL: hook.url },
        async (stderr) => {
          const url = /worker metrics {2}url=(\S+)/.exec(stderr)?.[1];
          if (!url || metrics) return false;
          const res = await request(url);
          metrics = await res.body.text();
          return true;
        },
      );
      expect(r.stderr).toMatch(/configuration {2}config=.*ml-teams.*\[redacted\]/);
      expect(r.stderr).not.toContain(hook.secret);
      expect(metrics).toContain('# TYPE runway_promotions_total counter');
      expect(metrics).toContain('# TYPE runway_notifications_total counter');
    },
  );
});

// Last: every test above has logged and returned what it would.
describe('secrets', () => {
  it('no secret URL in any log line, result or config printout', async () => {
    const hooks = receivers.filter((r) => r.received.length > 0 || r.abandoned > 0);
    expect(hooks.length).toBeGreaterThanOrEqual(8);
    const config = configWith({
      timeoutMs: 300,
      deadlineMs: 1000,
      backoffMs: 50,
      webhooks: hooks.map((r, i) => ({ name: `h${i}`, url: r.url })),
    });
    const printout = JSON.stringify(redacted(config));
    const { notify } = notifier(config);
    const results = JSON.stringify(await notify(rolledBack));
    expect(lines.length).toBeGreaterThan(10);
    const log = lines.join('\n');
    for (const r of hooks) {
      for (const where of [log, results, printout]) {
        expect(where).not.toContain(r.secret);
        expect(where).not.toContain(r.secret.split('/').at(-1));
      }
    }
    expect(printout).toContain('[redacted]');
  });
});

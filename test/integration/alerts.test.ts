/**
 * deploy/alerts.yaml: valid for Prometheus (`promtool check rules`), firing when and only when its
 * unit tests say (`promtool test rules`), and naming only metrics that a real router and a real
 * model server export, so a renamed metric cannot silently leave an alert that never fires.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import { startModelServer } from '../../serving/server';
import { closeAll, startTestRouter } from '../helpers/router';

afterAll(closeAll);

const DEPLOY = path.join(projectRoot, 'deploy');

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: DEPLOY, encoding: 'utf8' });
  if (r.error)
    throw new Error(`promtool not runnable (${r.error.message}); scripts/tools.sh prometheus installs it`);
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('alerting rules', () => {
  it('pass promtool check and their unit tests', () => {
    const check = promtool('check', 'rules', 'alerts.yaml');
    expect(check.status, check.out).toBe(0);
    expect(check.out).toMatch(/SUCCESS: \d+ rules found/);
    const test = promtool('test', 'rules', 'alerts.test.yaml');
    expect(test.status, test.out).toBe(0);
  });

  it('name only metrics the router and the model server export', async () => {
    const router = await startTestRouter();
    const server = await startModelServer({
      model: path.join(projectRoot, 'demo/models/fraud-v1.onnx'),
      name: 'fraud',
      port: 0,
    });
    try {
      const exported = new Set<string>();
      for (const url of [`${router.url}/metrics`, `${server.url}/metrics`]) {
        const text = await (await fetch(url)).text();
        for (const m of text.matchAll(/^# TYPE (\S+) /gm)) exported.add(m[1]!);
      }
      const rules = fs.readFileSync(path.join(DEPLOY, 'alerts.yaml'), 'utf8');
      const used = new Set([...rules.matchAll(/\b(runway_[a-z_]+)/g)].map((m) => m[1]!));
      expect(used.size).toBeGreaterThanOrEqual(6);
      expect([...used].filter((name) => !exported.has(name))).toEqual([]);
    } finally {
      await server.close();
    }
  });
});

/**
 * The HTML audit page in a real browser (Debian's Chromium, headless): recorded promotions, one
 * rolled back automatically, one by hand, one by the cost gate and one promoted, are turned into
 * pages by the same code as `runway audit --format html`, loaded from file:// with every network
 * request watched, and checked in the DOM the browser built (a rollback marker exactly where the
 * history has one, one table row and one timeline marker per look) and in a screenshot.
 * RUNWAY_UPDATE_SCREENSHOTS=1 writes the latency rollback's to docs/audit-report.png for the README.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditHtml } from '../../audit/html';
import { auditDocument, buildPromotionAudit, type PromotionAudit } from '../../audit/report';
import { projectRoot } from '../../common/paths';
import { browserUnavailable, openBrowser, type Browser } from '../helpers/browser';
import { historiesDir, historyFromJSON } from '../helpers/histories';

const missing = browserUnavailable();
if (missing) {
  const reason = `BROWSER TESTS SKIPPED: ${missing}`;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: these tests must run)`);
  console.warn(`\n${'!'.repeat(100)}\n${reason}\n${'!'.repeat(100)}\n`);
}

function audit(name: string): PromotionAudit {
  const history = historyFromJSON(
    JSON.parse(fs.readFileSync(path.join(historiesDir, `${name}.json`), 'utf8')),
  );
  return buildPromotionAudit(`promotion:${name}`, [{ runId: name, events: history.events ?? [] }]);
}

describe.skipIf(missing)('the HTML audit page in Chromium', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-audit-html-'));
  let browser: Browser;
  beforeAll(async () => {
    browser = await openBrowser();
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Loads the page of a recorded promotion; fails on any request that leaves file://. */
  async function load(name: string) {
    const a = audit(name);
    const file = path.join(tmp, `${name}.html`);
    fs.writeFileSync(file, auditHtml(auditDocument(a.model ?? name, [a], new Date())));
    const page = await browser.context.newPage();
    const fetched: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('file://')) fetched.push(r.url());
    });
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    return { a, page, fetched };
  }

  it.each([
    ['latency-rollback-v4', 'automatic'],
    ['manual-rollback-mid-canary', 'manual'],
    ['cost-rollback-v4', 'automatic'],
  ])(
    '%s: a rollback marker where the history has one, a row and a marker per look, a screenshot',
    { timeout: 90_000 },
    async (name, kind) => {
      const { a, page, fetched } = await load(name);
      expect(a.rollbacks).toHaveLength(1);
      expect(a.analyses.length).toBeGreaterThan(0);
      const markers = page.locator('svg.timeline .rollback-marker');
      expect(await markers.count()).toBe(1);
      expect(await markers.first().getAttribute('data-kind')).toBe(kind);
      expect(await markers.first().locator('title').textContent()).toContain(a.rollbacks[0]!.reason);
      expect(await page.locator('table.verdicts tbody tr').count()).toBe(a.analyses.length);
      expect(await page.locator('svg.timeline .verdict-marker').count()).toBe(a.analyses.length);
      // Laid out as drawn: the rollback line stands right of the first look, inside the chart.
      const chart = await page.locator('svg.timeline').boundingBox();
      const line = await markers.first().locator('line').boundingBox();
      const firstLook = await page.locator('svg.timeline .verdict-marker').first().boundingBox();
      expect(chart && line && firstLook).toBeTruthy();
      expect(chart!.width).toBeGreaterThan(500);
      expect(line!.x).toBeGreaterThan(firstLook!.x);
      expect(line!.x).toBeLessThanOrEqual(chart!.x + chart!.width);
      expect(await page.locator('.outcome').first().textContent()).toBe('rolled_back');
      if (kind === 'manual') {
        expect(await page.locator('svg.timeline .manual-marker').count()).toBe(a.manualActions.length);
        expect(await page.locator('table.actions').textContent()).toContain('carol');
      }
      expect(await page.locator('svg.timeline .approval-marker').count()).toBe(a.approvals.length);

      const shot = path.join(tmp, `${name}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      const png = fs.readFileSync(shot);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.length).toBeGreaterThan(30_000);
      if (name === 'latency-rollback-v4' && process.env.RUNWAY_UPDATE_SCREENSHOTS === '1') {
        await page.screenshot({ path: path.join(projectRoot, 'docs', 'audit-report.png') });
      }
      expect(fetched, 'the page fetched nothing').toEqual([]);
      await page.close();
    },
  );

  it('a promoted candidate: no rollback marker, its cost and its looks', { timeout: 90_000 }, async () => {
    const { a, page, fetched } = await load('cost-promote-v2');
    expect(a.outcome.outcome).toBe('promoted');
    expect(await page.locator('.rollback-marker').count()).toBe(0);
    expect(await page.locator('table.verdicts tbody tr').count()).toBe(a.analyses.length);
    // Error rate and p99 for both variants at the canary looks (window summaries in the history).
    const canaryLooks = a.analyses.filter((x) => x.phase === 'canary').length;
    expect(await page.locator('svg.p99-chart circle[data-side="baseline"]').count()).toBe(canaryLooks);
    expect(await page.locator('svg.p99-chart circle[data-side="candidate"]').count()).toBeGreaterThanOrEqual(
      canaryLooks,
    );
    const cost = await page.locator('table.cost').textContent();
    for (const phase of ['staging', 'shadow', 'canary', 'total']) expect(cost).toContain(phase);
    expect(await page.locator('p.per1k').textContent()).toMatch(/candidate v2 [\d.]+ \$\/1k/);
    expect(fetched).toEqual([]);
    await page.close();
  });
});

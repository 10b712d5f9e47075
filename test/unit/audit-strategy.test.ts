/**
 * The audit shows the strategy, its steps and a blue-green preview, built from the histories the
 * strategy promotions recorded (test/fixtures/histories/, test/integration/promotion-strategies.test.ts)
 * and from one recorded before strategies existed (a canary).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditMarkdown } from '../../audit/markdown';
import { auditDocument, buildPromotionAudit } from '../../audit/report';
import { revertTiming, routeChanges } from '../../audit/route-timing';
import { historiesDir, historyFromJSON } from '../helpers/histories';

function audit(name: string) {
  const events =
    historyFromJSON(JSON.parse(fs.readFileSync(path.join(historiesDir, `${name}.json`), 'utf8'))).events ??
    [];
  return { events, audit: buildPromotionAudit(`promotion:${name}`, [{ runId: name, events }]) };
}

describe('the audit of each strategy', () => {
  it('blue-green: strategy, preview and switch steps, the preview route, in JSON and Markdown', () => {
    const { audit: a } = audit('blue-green-promote-v2');
    expect(a.spec).toMatchObject({
      strategy: 'blue-green',
      steps: ['preview by x-runway-preview 0%/6s', '100%/8s'],
    });
    expect(a.trafficChanges.map((c) => [c.weights, c.preview ?? null])).toEqual([
      [
        { v1: 100, v2: 0 },
        { variant: 'v2', header: 'x-runway-preview', value: 'qa' },
      ],
      [{ v1: 0, v2: 100 }, null],
      [{ v2: 100 }, null],
    ]);
    const md = auditMarkdown(auditDocument('bg-promote', [a], new Date(0)));
    expect(md).toContain(
      '- strategy: **blue-green** (preview by x-runway-preview 0%/6s → 100%/8s → graduate)',
    );
    expect(md).toMatch(/\| preview: x-runway-preview=qa → v2 \|/);
  });

  it('linear: its derived steps', () => {
    expect(audit('linear-promote-v2').audit.spec).toMatchObject({
      strategy: 'linear',
      steps: ['25%/6s', '50%/6s', '75%/6s'],
    });
  });

  it('a promotion recorded before strategies is a canary, with its steps', () => {
    expect(audit('promote-v2').audit.spec).toMatchObject({
      strategy: 'canary',
      steps: ['10%/4s', '25%/4s', '50%/4s'],
    });
  });

  it('route timings: every route change, and the revert from the failing look', () => {
    const { events } = audit('blue-green-rollback-v5');
    const changes = routeChanges(events);
    expect(changes.map((c) => c.weights)).toEqual([{ v1: 0, v5: 100 }, { v1: 100 }]);
    expect(changes.every((c) => c.ms >= 0 && c.ms < 60_000)).toBe(true);
    const revert = revertTiming(events);
    expect(revert?.reason).toMatch(
      /^rollback: automatic rollback at blue-green switch after 2 failed intervals/,
    );
    expect(revert!.ms).toBeGreaterThan(0);
    expect(Date.parse(revert!.revertedAt)).toBeGreaterThan(Date.parse(revert!.decidedAt));
    // a promotion that graduated has no revert
    expect(revertTiming(audit('blue-green-promote-v2').events)).toBeUndefined();
  });
});

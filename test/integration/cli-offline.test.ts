/**
 * Commands that need the platform, run while it is down: one clear sentence with what to run,
 * not the same advice twice.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runwayBin } from '../../common/paths';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-offline-'));
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

describe('the platform is not running', () => {
  it('status says so once, with what to run and what works without it', () => {
    const res = spawnSync(process.execPath, [runwayBin, 'status', 'fraud-detector'], {
      env: { ...process.env, RUNWAY_HOME: home, TEMPORAL_ADDRESS: '' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(res.status).toBe(1);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^runway: the runway platform is not running \(no Temporal server for .*temporal\)/,
    );
    expect(res.stderr.match(/runway up/g)).toHaveLength(1);
    expect(res.stderr.match(/TEMPORAL_ADDRESS/g)).toHaveLength(1);
    expect(res.stderr).toContain('`runway audit MODEL` works without it');
  });
});

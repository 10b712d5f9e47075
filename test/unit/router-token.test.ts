/** The embedded router's admin token file: created private, tightened when found loose, stable. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { routerToken } from '../../workers/platform';

const saved = process.env.RUNWAY_HOME;
let home: string | undefined;
afterEach(() => {
  if (saved === undefined) delete process.env.RUNWAY_HOME;
  else process.env.RUNWAY_HOME = saved;
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

describe('router admin token', () => {
  it('is generated once, 0600 in a 0700 directory, and both tightened when found readable by others', () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-token-'));
    process.env.RUNWAY_HOME = home;
    const first = routerToken();
    expect(first).toMatch(/^[0-9a-f]{48}$/);
    const file = path.join(home, 'router', 'token');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(routerToken()).toBe(first);

    fs.chmodSync(file, 0o644);
    fs.chmodSync(path.dirname(file), 0o755);
    expect(routerToken()).toBe(first);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
  });
});

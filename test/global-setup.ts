import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { pidAlive } from '../common/process';
import { stopDevServer } from '../workers/temporal-server';

/**
 * One Temporal dev server per test run, started lazily by the first test that asks for it
 * (test/helpers/temporal.ts) so unit-only runs never pay for it, and stopped here at the end of
 * the run, failed tests included. Its database lives in a temporary directory.
 */
const PREFIX = 'runway-test-temporal-';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await reapOrphans();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), PREFIX));
  fs.writeFileSync(path.join(dataDir, 'owner.pid'), String(process.pid));
  project.provide('temporalDataDir', dataDir);
  return async () => {
    await stopDevServer(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
}

/** Servers left by a test run that was killed (SIGKILL skips teardown): their owner is gone. */
async function reapOrphans(): Promise<void> {
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = path.join(os.tmpdir(), name);
    const ownerFile = path.join(dir, 'owner.pid');
    if (!fs.existsSync(ownerFile)) {
      // Either a run that is just starting (skip) or one from before owner files existed.
      if (Date.now() - fs.statSync(dir).mtimeMs < 10 * 60_000) continue;
    } else if (pidAlive(Number(fs.readFileSync(ownerFile, 'utf8')))) {
      continue; // another run, in progress
    }
    await stopDevServer(dir).catch(() => false);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Data directory of the run's shared Temporal dev server (see test/helpers/temporal.ts). */
    temporalDataDir: string;
  }
}

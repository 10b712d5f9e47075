import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { stopDevServer } from '../workers/temporal-server';

/**
 * One Temporal dev server per test run, started lazily by the first test that asks for it
 * (test/helpers/temporal.ts) so unit-only runs never pay for it, and stopped here at the end of
 * the run, failed tests included. Its database lives in a temporary directory.
 */
export default function setup(project: TestProject): () => Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-test-temporal-'));
  project.provide('temporalDataDir', dataDir);
  return async () => {
    await stopDevServer(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Data directory of the run's shared Temporal dev server (see test/helpers/temporal.ts). */
    temporalDataDir: string;
  }
}

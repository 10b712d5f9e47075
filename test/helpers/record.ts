import type { Client } from '@temporalio/client';
import { saveHistory } from './histories';

/**
 * Saves a finished run's history under test/fixtures/histories/ when RUNWAY_RECORD_HISTORIES=1
 * (`npm run test:record`); CI replays the committed ones against the current workflow code.
 */
export async function recordHistory(client: Client, workflowId: string, name: string): Promise<void> {
  if (process.env.RUNWAY_RECORD_HISTORIES !== '1') return;
  await saveHistory(client, workflowId, name);
}

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../../common/process';
import { freePort } from '../../common/ports';
import { loadPlatformConfig } from '../../workers/config';
import {
  ensureTemporal,
  findRunningDevServer,
  findTemporalBin,
  registerSearchAttributes,
  stopDevServer,
  TemporalUnavailableError,
  type TemporalEndpoint,
} from '../../workers/temporal-server';
import { RUNWAY_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { expectEventually, testTemporal } from '../helpers/temporal';

/**
 * The dev-server lifecycle on a private data directory (not the run's shared server): start,
 * search attributes, reuse by a second caller, persistence across a restart, clean stop.
 */

const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
const envOnly = loadPlatformConfig({ file: null, env: {} }).temporal;

async function withClient<T>(
  endpoint: TemporalEndpoint,
  fn: (c: Client, conn: Connection) => Promise<T>,
): Promise<T> {
  const connection = await Connection.connect(endpoint.connectionOptions);
  try {
    return await fn(new Client({ connection, namespace: endpoint.namespace }), connection);
  } finally {
    await connection.close();
  }
}

describe('embedded Temporal dev server', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-temporal-'));
  afterAll(async () => {
    await stopDevServer(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  const opts = { temporal: envOnly, dataDir, port: 'auto' as const, uiPort: 'auto' as const };

  it('starts with the UI and runway search attributes, is reused, persists across restarts, stops cleanly', async () => {
    const t0 = Date.now();
    const first = await ensureTemporal(opts);
    const startMs = Date.now() - t0;
    expect(first.mode).toBe('started');
    expect(first.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(fs.existsSync(path.join(dataDir, 'temporal.db'))).toBe(true);
    console.info(`dev server ready (search attributes included) in ${startMs} ms`);

    // The Web UI answers.
    const ui = await fetch(first.uiUrl!);
    expect(ui.status).toBe(200);

    await withClient(first, async (client, conn) => {
      const { customAttributes } = await conn.operatorService.listSearchAttributes({
        namespace: first.namespace,
      });
      for (const key of RUNWAY_SEARCH_ATTRIBUTES)
        expect(customAttributes?.[key.name], key.name).toBe(KEYWORD);
      // A workflow that outlives the restart below (nothing polls its task queue).
      await client.workflow.start('neverRuns', {
        taskQueue: 'nobody',
        workflowId: 'persisted-across-restart',
      });
    });

    // A second caller (another runway process) reuses the running server.
    const second = await ensureTemporal(opts);
    expect(second.mode).toBe('reused');
    expect(second.address).toBe(first.address);
    await second.stop(); // a no-op: it did not start the server
    const state = await findRunningDevServer(dataDir);
    expect(state?.address).toBe(first.address);

    // Stop: the process exits and the data dir no longer advertises a server.
    await first.stop();
    expect(pidAlive(state!.pid)).toBe(false);
    expect(await findRunningDevServer(dataDir)).toBeNull();
    await expect(ensureTemporal({ ...opts, start: false })).rejects.toThrow(/runway up/);

    // Restart on the same database: the workflow is still there.
    const third = await ensureTemporal(opts);
    expect(third.mode).toBe('started');
    await withClient(third, async (client) => {
      const desc = await client.workflow.getHandle('persisted-across-restart').describe();
      expect(desc.status.name).toBe('RUNNING');
      await client.workflow.getHandle('persisted-across-restart').terminate('test done');
    });
    await third.stop();
  });

  it('fails with the log tail when the server cannot start', async () => {
    const port = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-temporal-bad-'));
    try {
      const err = await ensureTemporal({
        temporal: envOnly,
        dataDir: dir,
        port,
        uiPort: 'auto',
        readyTimeoutMs: 20_000,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TemporalUnavailableError);
      expect((err as Error).message).toMatch(/temporal dev server/);
      expect((err as Error).message).toMatch(/address already in use|exited/i);
    } finally {
      blocker.close();
      await stopDevServer(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('search attribute registration', () => {
  it('adds missing attributes to a server started without them, idempotently', async () => {
    const bin = findTemporalBin();
    expect(bin, 'the temporal CLI (scripts/tools.sh temporal)').toBeTruthy();
    const port = await freePort();
    const uiPort = await freePort();
    const server = spawn(
      bin!,
      [
        'server',
        'start-dev',
        '--ip',
        '127.0.0.1',
        '--port',
        `${port}`,
        '--ui-port',
        `${uiPort}`,
        '--headless',
        '--log-level',
        'error',
      ],
      {
        stdio: 'ignore',
      },
    );
    const exited = new Promise((r) => server.once('exit', r));
    try {
      const connection = await expectEventually(
        () => Connection.connect({ address: `127.0.0.1:${port}`, connectTimeout: 1000 }),
        {
          timeoutMs: 30_000,
          intervalMs: 200,
        },
      );
      try {
        const before = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
        expect(before.customAttributes?.RunwayModel).toBeUndefined();
        await registerSearchAttributes(connection, 'default');
        await registerSearchAttributes(connection, 'default'); // second call: nothing to do, no error
        const after = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
        for (const key of RUNWAY_SEARCH_ATTRIBUTES)
          expect(after.customAttributes?.[key.name], key.name).toBe(KEYWORD);
      } finally {
        await connection.close();
      }
    } finally {
      server.kill('SIGTERM');
      await exited;
    }
  });
});

describe('TEMPORAL_ADDRESS', () => {
  it('uses the named server as is: starts nothing, registers the search attributes there', async () => {
    const shared = await testTemporal();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-temporal-ext-'));
    try {
      const temporal = loadPlatformConfig({ file: null, env: { TEMPORAL_ADDRESS: shared.address } }).temporal;
      const endpoint = await ensureTemporal({ temporal, dataDir });
      expect(endpoint.mode).toBe('external');
      expect(endpoint.address).toBe(shared.address);
      expect(endpoint.uiUrl).toBeUndefined();
      expect(fs.readdirSync(dataDir)).toEqual([]); // no dev server state, no database
      await endpoint.stop(); // must not stop a server it does not own
      await withClient(shared, async (_client, conn) => {
        await conn.workflowService.getSystemInfo({});
      });
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

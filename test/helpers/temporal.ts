import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type WorkerOptions,
} from '@temporalio/worker';
import { afterAll, beforeAll, inject } from 'vitest';
import { loadPlatformConfig } from '../../workers/config';
import { ensureTemporal, type TemporalEndpoint } from '../../workers/temporal-server';

/**
 * A real Temporal dev server for integration tests: one per test run (the first caller starts it,
 * test/global-setup.ts stops it), or the cluster named by TEMPORAL_ADDRESS. Tests isolate
 * themselves with their own task queue (uniqueTaskQueue) and workflow IDs, never by server.
 */

let shared: Promise<TemporalEndpoint> | undefined;

// The SDK logs every worker state change at INFO; tests want warnings and errors only.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // Already installed in this test process (another helper or file did it first).
}

export function testTemporal(): Promise<TemporalEndpoint> {
  shared ??= ensureTemporal({
    // Environment only: a developer's .runway/platform.yaml must not steer the tests.
    temporal: loadPlatformConfig({ file: null }).temporal,
    dataDir: inject('temporalDataDir'),
    port: 'auto',
    uiPort: 'auto',
  });
  return shared;
}

export interface TemporalTestContext {
  readonly endpoint: TemporalEndpoint;
  readonly connection: Connection;
  readonly client: Client;
}

/** Registers beforeAll/afterAll hooks giving the suite a connected client. */
export function useTemporal(): TemporalTestContext {
  let ctx: { endpoint: TemporalEndpoint; connection: Connection; client: Client } | undefined;
  beforeAll(async () => {
    const endpoint = await testTemporal();
    const connection = await Connection.connect(endpoint.connectionOptions);
    ctx = { endpoint, connection, client: new Client({ connection, namespace: endpoint.namespace }) };
  });
  afterAll(async () => {
    await ctx?.connection.close();
  });
  const get = (): NonNullable<typeof ctx> => {
    if (!ctx) throw new Error('useTemporal(): the context is ready only inside tests (after beforeAll)');
    return ctx;
  };
  return {
    get endpoint() {
      return get().endpoint;
    },
    get connection() {
      return get().connection;
    },
    get client() {
      return get().client;
    },
  };
}

/** A task queue no other test polls, so parallel files never steal each other's tasks. */
export function uniqueTaskQueue(prefix = 'test'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

// Webpack runs once per workflow file per test process, not once per Worker.
const bundles = new Map<string, Promise<{ code: string }>>();
function bundleFor(workflowsPath: string): Promise<{ code: string }> {
  let bundle = bundles.get(workflowsPath);
  if (!bundle) {
    bundle = bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
    bundles.set(workflowsPath, bundle);
  }
  return bundle;
}
const noop = (): void => {};
const quietBundlerLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

export interface TestWorkerOptions {
  workflowsPath: string;
  taskQueue: string;
  activities?: object;
  endpoint?: TemporalEndpoint;
  /** Extra Worker.create options (e.g. maxCachedWorkflows: 0 to force replays). */
  options?: Partial<WorkerOptions>;
}

/** Runs a Worker while fn runs, then shuts it down and closes its connection. */
export async function withWorker<T>(opts: TestWorkerOptions, fn: (worker: Worker) => Promise<T>): Promise<T> {
  const endpoint = opts.endpoint ?? (await testTemporal());
  const connection = await NativeConnection.connect(endpoint.connectionOptions);
  try {
    const worker = await Worker.create({
      connection,
      namespace: endpoint.namespace,
      taskQueue: opts.taskQueue,
      activities: opts.activities ?? {},
      workflowBundle: await bundleFor(opts.workflowsPath),
      ...opts.options,
    });
    return await worker.runUntil(() => fn(worker));
  } finally {
    await connection.close();
  }
}

export interface EventuallyOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Retries fn (an assertion or a probe that throws) until it passes, returning its value; on
 * timeout rethrows the last failure, so the message says what was still wrong.
 */
export async function expectEventually<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 100 }: EventuallyOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) {
        if (err instanceof Error) err.message = `still failing after ${timeoutMs} ms: ${err.message}`;
        throw err;
      }
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

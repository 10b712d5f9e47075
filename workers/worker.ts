import fs from 'node:fs';
import os from 'node:os';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createLogger, type Logger } from '../common/log';
import type { PlatformConfig } from './config';
import { workflowBundlePath, workflowsEntry } from './bundle';
import { ensureTemporal, type TemporalEndpoint } from './temporal-server';

/**
 * The runway worker: polls task queue `runway` (or the configured one), runs promotion workflows
 * from the prebuilt bundle in production and from source in development, and shuts down
 * gracefully: on SIGINT/SIGTERM (the SDK's runtime handles those) or when `signal` aborts, it
 * stops polling, lets running activities finish within `shutdownGraceTime`, then returns.
 */

export interface RunWorkerOptions {
  config: PlatformConfig;
  /** Activity implementations, e.g. `createActivities(deps)`. */
  activities: object;
  /** Where Temporal is; default: `ensureTemporal` with the config (reuses a running dev server). */
  endpoint?: TemporalEndpoint;
  /** Workflow source (development). Ignored when a bundle is used. */
  workflowsPath?: string;
  /** A prebuilt bundle; default `dist/workflows-bundle.js` when it exists and is up to date. */
  workflowBundlePath?: string;
  signal?: AbortSignal;
  /** How long running activities get after shutdown begins (default 10 s). */
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
  identity?: string;
  logger?: Logger;
}

export interface RunwayWorker {
  worker: Worker;
  connection: NativeConnection;
  endpoint: TemporalEndpoint;
  /** Which workflow code this worker runs (bundle file or source entry), for the startup log. */
  workflows: string;
}

/** Chooses the workflow code: explicit options, else an up-to-date bundle, else the source entry. */
export function workflowSource(
  opts: Pick<RunWorkerOptions, 'workflowsPath' | 'workflowBundlePath'>,
  log: Logger,
): Pick<WorkerOptions, 'workflowsPath' | 'workflowBundle'> {
  if (opts.workflowBundlePath) return { workflowBundle: { codePath: opts.workflowBundlePath } };
  if (opts.workflowsPath) return { workflowsPath: opts.workflowsPath };
  const entry = workflowsEntry();
  const bundleTime = fs.statSync(workflowBundlePath, { throwIfNoEntry: false })?.mtimeMs;
  const entryTime = entry ? fs.statSync(entry).mtimeMs : undefined;
  if (bundleTime !== undefined && (entryTime === undefined || entryTime <= bundleTime)) {
    return { workflowBundle: { codePath: workflowBundlePath } };
  }
  if (!entry)
    throw new Error('no workflow code: neither dist/workflows-bundle.js nor workflows/index.ts exists');
  if (bundleTime !== undefined) {
    log.warn('workflow bundle is older than the workflow code; bundling from source (run `npm run build`)');
  }
  return { workflowsPath: entry };
}

export async function createRunwayWorker(opts: RunWorkerOptions): Promise<RunwayWorker> {
  const log = opts.logger ?? createLogger('worker');
  const endpoint =
    opts.endpoint ?? (await ensureTemporal({ temporal: opts.config.temporal, start: false, logger: log }));
  const source = workflowSource(opts, log);
  const connection = await NativeConnection.connect(endpoint.connectionOptions);
  try {
    const worker = await Worker.create({
      connection,
      namespace: endpoint.namespace,
      taskQueue: opts.config.taskQueue,
      activities: opts.activities,
      identity: opts.identity ?? `runway-worker@${os.hostname()}:${process.pid}`,
      shutdownGraceTime: opts.shutdownGraceTime ?? '10s',
      ...source,
    });
    return {
      worker,
      connection,
      endpoint,
      workflows:
        source.workflowBundle && 'codePath' in source.workflowBundle
          ? source.workflowBundle.codePath
          : (source.workflowsPath ?? 'inline bundle'),
    };
  } catch (err) {
    await connection.close();
    throw err;
  }
}

/** Runs a worker until shutdown (signal, SIGINT/SIGTERM) and closes its connection. */
export async function runWorker(opts: RunWorkerOptions): Promise<void> {
  const log = opts.logger ?? createLogger('worker');
  const { worker, connection, endpoint, workflows } = await createRunwayWorker({ ...opts, logger: log });
  if (opts.signal?.aborted) {
    await connection.close();
    return;
  }
  const onAbort = (): void => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  log.info('worker polling', {
    taskQueue: opts.config.taskQueue,
    namespace: worker.options.namespace,
    address: endpoint.address,
    workflows,
  });
  try {
    await worker.run();
    log.info('worker stopped');
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await connection.close();
  }
}

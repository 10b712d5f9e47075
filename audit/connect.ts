/**
 * A Temporal client for the audit, whether or not the platform runs: the configured cluster or
 * the running dev server when there is one; otherwise a private dev server on a copy of the
 * embedded platform's saved database, stopped afterwards. The copy means the audit never writes
 * the platform's database and never races a `runway up` that starts meanwhile.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createLogger } from '../common/log';
import { loadPlatformConfig, type PlatformConfig } from '../workers/config';
import {
  defaultTemporalDataDir,
  ensureTemporal,
  findRunningDevServer,
  TemporalUnavailableError,
  type TemporalEndpoint,
} from '../workers/temporal-server';

export interface AuditConnection {
  client: Client;
  /** The platform configuration it connected with (its prices price old promotions). */
  config: PlatformConfig;
  /** `running`: the platform's server or a cluster; `offline`: a private server on a copy of the database. */
  source: 'running' | 'offline';
  close(): Promise<void>;
}

export interface AuditConnectOptions {
  /** The embedded platform's Temporal directory; default `<state dir>/temporal`. */
  dataDir?: string;
  identity?: string;
}

export async function connectForAudit(opts: AuditConnectOptions = {}): Promise<AuditConnection> {
  const config = loadPlatformConfig();
  const dataDir = path.resolve(opts.dataDir ?? defaultTemporalDataDir());
  const log = createLogger('audit');
  let endpoint: TemporalEndpoint;
  let source: AuditConnection['source'] = 'running';
  let scratch: string | undefined;
  try {
    endpoint = await ensureTemporal({
      temporal: config.temporal,
      dataDir,
      start: false,
      registerSearchAttributes: false,
      logger: log,
    });
  } catch (err) {
    if (!(err instanceof TemporalUnavailableError) || config.temporal.address) throw err;
    const db = path.join(dataDir, 'temporal.db');
    if (!fs.existsSync(db)) {
      throw new Error(
        `no Temporal server is running and there is no saved platform database at ${db}: nothing to audit (set TEMPORAL_ADDRESS for a cluster)`,
      );
    }
    // Checked again right before copying: a server that holds the database may have started.
    if (await findRunningDevServer(dataDir)) return connectForAudit(opts);
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-audit-'));
    for (const suffix of ['', '-wal', '-shm']) {
      if (fs.existsSync(db + suffix))
        fs.copyFileSync(db + suffix, path.join(scratch, `temporal.db${suffix}`));
    }
    log.info('platform not running: reading a copy of its database with a private Temporal server', { db });
    try {
      endpoint = await ensureTemporal({
        temporal: config.temporal,
        dataDir: scratch,
        port: 'auto',
        uiPort: 'auto',
        registerSearchAttributes: false,
        logger: log,
      });
    } catch (startErr) {
      fs.rmSync(scratch, { recursive: true, force: true });
      throw startErr;
    }
    source = 'offline';
  }
  let connection: Connection;
  try {
    connection = await Connection.connect(endpoint.connectionOptions);
  } catch (err) {
    await endpoint.stop();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
  const client = new Client({
    connection,
    namespace: endpoint.namespace,
    identity: opts.identity ?? `${os.userInfo().username}@${os.hostname()} (runway audit)`,
  });
  return {
    client,
    config,
    source,
    close: async () => {
      await connection.close();
      await endpoint.stop(); // a no-op unless the private server was started here
      if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    },
  };
}

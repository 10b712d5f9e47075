/**
 * The `local` FleetDriver: each replica is a detached `runway serve` process on a free loopback
 * port, so replicas outlive the controller (a worker restart must not take production down).
 * Everything needed to find them again is on disk (local-state.ts): a restarted controller
 * reattaches to live replicas, replaces dead ones, and never starts twins because every
 * mutation of a deployment holds its lock file.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { createLogger, type Logger } from '../../common/log';
import { runwayBin, stateDir } from '../../common/paths';
import { sleep } from '../../common/timers';
import { digestFile } from '../../common/digest';
import { checkModelName, checkVersion } from '../../registry/names';
import {
  DeployRefusedError,
  deploymentName,
  servingFlags,
  type Deployment,
  type DeploymentRequest,
  type Environment,
  type FleetCallOptions,
  type FleetDriver,
  type ServingOptions,
} from './driver';
import { withFileLock } from '../../common/lock';
import { FleetStateStore, type DeploymentState, type ReplicaState } from './local-state';
import { freePort } from '../../common/ports';
import { replicaReady } from './probe';
import {
  childExit,
  isOurReplica,
  logTail,
  replicaAlive,
  settledExit,
  stopProcess,
  trackChild,
} from './replica-process';
import { EXIT_MODEL_REFUSED } from '../server/errors';

export interface LocalFleetOptions {
  /** Where state, locks and logs live; default `<state dir>/fleet`. */
  dir?: string;
  host?: string;
  /** How long a deploy or scale waits for new replicas to turn ready. */
  readyTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace when stopping a replica (the server drains in that time). */
  stopGraceMs?: number;
  /** Executable and leading arguments of the model server; default `node bin/runway.js serve`. */
  command?: { file: string; args: string[] };
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Picks a replica's port; default asks the kernel for a free one (see ports.ts). */
  pickPort?: (host: string) => Promise<number>;
}

const ENVIRONMENTS: readonly Environment[] = ['staging', 'production'];
const MAX_REPLICAS = 64;
const PORT_RETRIES = 3;

export class LocalFleet implements FleetDriver {
  readonly store: FleetStateStore;
  private readonly host: string;
  private readonly readyTimeoutMs: number;
  private readonly stopGraceMs: number;
  private readonly command: { file: string; args: string[] };
  private readonly env: NodeJS.ProcessEnv;
  private readonly log: Logger;
  private readonly pickPort: (host: string) => Promise<number>;
  private fullSizeSaid = false;

  constructor(opts: LocalFleetOptions = {}) {
    this.store = new FleetStateStore(path.resolve(opts.dir ?? path.join(stateDir(), 'fleet')));
    this.host = opts.host ?? '127.0.0.1';
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 120_000;
    this.stopGraceMs = opts.stopGraceMs ?? 10_000;
    this.command = opts.command ?? { file: process.execPath, args: [runwayBin, 'serve'] };
    this.env = opts.env ?? process.env;
    this.log = opts.logger ?? createLogger('fleet');
    this.pickPort = opts.pickPort ?? freePort;
  }

  async deploy(req: DeploymentRequest, opts: FleetCallOptions = {}): Promise<Deployment> {
    checkRequest(req);
    const name = deploymentName(req.model, req.version, req.environment);
    const sha256 = req.sha256 ?? (await digestFile(req.artifactPath)).sha256;
    const serving = req.serving ?? {};
    const target: DeploymentState = {
      schema: 1,
      name,
      model: req.model,
      version: req.version,
      environment: req.environment,
      artifactPath: path.resolve(req.artifactPath),
      sha256,
      serving,
      replicas: req.replicas,
      args: this.serveArgs(req, path.resolve(req.artifactPath), sha256, serving),
      instances: [],
      retiring: [],
      updatedAt: '',
    };
    return this.locked(name, opts, async () => {
      const prev = this.store.read(name);
      if (prev) {
        const live = this.liveReplicas(prev, prev.instances);
        target.retiring = this.liveReplicas(prev, prev.retiring);
        if (prev.sha256 === sha256 && sameArgs(prev.args, target.args)) target.instances = live;
        else {
          this.log.info('replacing deployment', {
            name,
            from: prev.sha256.slice(0, 12),
            to: sha256.slice(0, 12),
          });
          target.retiring.push(...live);
        }
      }
      return this.reconcile(target, prev, opts);
    });
  }

  async scale(name: string, replicas: number, opts: FleetCallOptions = {}): Promise<Deployment> {
    checkReplicas(replicas);
    return this.locked(name, opts, async () => {
      const prev = this.store.read(name);
      if (!prev)
        throw new Error(`cannot scale ${name}: no such deployment in ${this.store.dir} (deploy it first)`);
      const target: DeploymentState = {
        ...prev,
        replicas,
        instances: this.liveReplicas(prev, prev.instances),
        retiring: this.liveReplicas(prev, prev.retiring),
      };
      return this.reconcile(target, prev, opts);
    });
  }

  /** Local replicas are cheap processes: every version keeps its full size, said once. */
  async scaleToWeight(name: string, _weight: number, _opts?: FleetCallOptions): Promise<Deployment> {
    const d = await this.get(name);
    if (!d)
      throw new Error(`cannot scale ${name}: no such deployment in ${this.store.dir} (deploy it first)`);
    if (!this.fullSizeSaid) {
      this.fullSizeSaid = true;
      this.log.info(
        'the local fleet keeps every version at full size; replicas do not follow traffic weight',
      );
    }
    return d;
  }

  async get(name: string): Promise<Deployment | undefined> {
    const state = this.store.read(name);
    if (!state) return undefined;
    const ready = await Promise.all(
      state.instances.map(
        async (r) =>
          isOurReplica(r.pid, r.port, state.model) &&
          (await replicaReady(r.endpoint, state.model, state.version)),
      ),
    );
    const endpoints = state.instances.filter((_, i) => ready[i]).map((r) => r.endpoint);
    return toDeployment(state, endpoints);
  }

  async list(filter: { model?: string; environment?: Environment } = {}): Promise<Deployment[]> {
    const out: Deployment[] = [];
    for (const name of this.store.names()) {
      const d = await this.get(name);
      if (!d) continue;
      if (filter.model !== undefined && d.model !== filter.model) continue;
      if (filter.environment !== undefined && d.environment !== filter.environment) continue;
      out.push(d);
    }
    return out;
  }

  async teardown(name: string, opts: FleetCallOptions = {}): Promise<void> {
    await this.locked(name, opts, async () => {
      const state = this.store.read(name);
      if (state) {
        const all = [...state.instances, ...state.retiring];
        opts.onProgress?.(`${name}: stopping ${all.length} replica(s)`);
        await Promise.all(all.map((r) => this.stopReplica(state, r)));
        this.log.info('torn down', { name, replicas: all.length });
      }
      this.store.remove(name);
    });
  }

  /** Pids of every replica this fleet's state knows about (for operators and tests). */
  trackedPids(name: string): number[] {
    const s = this.store.read(name);
    return s ? [...s.instances, ...s.retiring].map((r) => r.pid) : [];
  }

  // --- internals -------------------------------------------------------------------------

  private locked<T>(name: string, opts: FleetCallOptions, body: () => Promise<T>): Promise<T> {
    fs.mkdirSync(this.store.dir, { recursive: true });
    return withFileLock(
      this.store.lockFile(name),
      {
        signal: opts.signal,
        onWait: (holder) => opts.onProgress?.(`${name}: waiting for ${holder} to finish with it`),
      },
      body,
    );
  }

  /** Replicas that still run and are still ours; the others are reported and forgotten. */
  private liveReplicas(state: DeploymentState, replicas: ReplicaState[]): ReplicaState[] {
    return replicas.filter((r) => {
      const ours = isOurReplica(r.pid, r.port, state.model);
      if (!ours) this.log.warn('replica gone', { name: state.name, pid: r.pid, port: r.port, log: r.log });
      return ours;
    });
  }

  /**
   * Brings `target.instances` to `target.replicas` ready replicas, then stops `target.retiring`.
   * On failure, stops what this call started and puts back what ran before.
   */
  private async reconcile(
    target: DeploymentState,
    prev: DeploymentState | undefined,
    opts: FleetCallOptions,
  ): Promise<Deployment> {
    const { name } = target;
    let instances = target.instances;
    const retiring = [...target.retiring];
    if (instances.length > target.replicas) {
      retiring.push(...instances.slice(target.replicas)); // Newest go first.
      instances = instances.slice(0, target.replicas);
    }
    const kept = instances.length;
    const wanted = target.replicas - kept;
    if (wanted > 0) opts.onProgress?.(`${name}: starting ${wanted} replica(s)`);
    const fresh: ReplicaState[] = [];
    const persist = (): void =>
      this.store.write({ ...target, instances: [...instances, ...fresh], retiring });
    try {
      for (let i = 0; i < wanted; i++) {
        fresh.push(await this.spawnReplica(target));
        persist(); // Before waiting, so a controller crash mid-deploy still knows these pids.
      }
      if (wanted <= 0) persist();
      await this.waitReady(target, [...instances, ...fresh], opts, (i, r) => {
        if (i >= kept) fresh[i - kept] = r;
        else instances[i] = r;
        persist();
      });
    } catch (err) {
      const survivors = await this.rollBack(target, prev, instances, fresh, retiring);
      this.log.warn('deploy failed', {
        name,
        error: err instanceof Error ? err.message.split('\n')[0] : String(err),
        survivors,
      });
      throw err;
    }
    if (retiring.length > 0) opts.onProgress?.(`${name}: stopping ${retiring.length} replica(s)`);
    await Promise.all(retiring.map((r) => this.stopReplica(target, r)));
    const final: DeploymentState = { ...target, instances: [...instances, ...fresh], retiring: [] };
    this.store.write(final);
    if (wanted !== 0 || retiring.length > 0) {
      this.log.info('deployment ready', {
        name,
        replicas: final.instances.length,
        endpoints: final.instances.map((r) => r.endpoint).join(','),
      });
    }
    return toDeployment(
      final,
      final.instances.map((r) => r.endpoint),
    );
  }

  /** Stops this call's replicas and any kept one that never turned ready; restores the previous state. */
  private async rollBack(
    target: DeploymentState,
    prev: DeploymentState | undefined,
    kept: ReplicaState[],
    fresh: ReplicaState[],
    retiring: ReplicaState[],
  ): Promise<number> {
    const keptReady: ReplicaState[] = [];
    for (const r of kept) {
      if (await replicaReady(r.endpoint, target.model, target.version)) keptReady.push(r);
      else fresh.push(r);
    }
    await Promise.all(fresh.map((r) => this.stopReplica(target, r)));
    const replacing =
      prev !== undefined && (prev.sha256 !== target.sha256 || !sameArgs(prev.args, target.args));
    if (replacing) {
      // The old artifact keeps serving: its replicas were only retiring.
      this.store.write({ ...prev, instances: retiring.filter((r) => replicaAlive(r.pid)), retiring: [] });
      return retiring.length;
    }
    if (!prev && keptReady.length === 0) {
      fs.rmSync(this.store.file(target.name), { force: true }); // Keep the logs for the post-mortem.
      return 0;
    }
    this.store.write({
      ...target,
      replicas: prev?.replicas ?? target.replicas,
      instances: keptReady,
      retiring,
    });
    return keptReady.length;
  }

  private serveArgs(
    req: DeploymentRequest,
    artifactPath: string,
    sha256: string,
    s: ServingOptions,
  ): string[] {
    const args = [
      '--model',
      artifactPath,
      '--name',
      req.model,
      '--version',
      req.version,
      '--host',
      this.host,
      // Every replica also serves OIP gRPC on a free port, named in its GET /v2 for the router.
      '--grpc-port',
      '0',
    ];
    args.push(...servingFlags(s), '--sha256', sha256);
    return args;
  }

  private async spawnReplica(target: DeploymentState): Promise<ReplicaState> {
    const port = await this.pickPort(this.host);
    const logDir = this.store.logDir(target.name);
    fs.mkdirSync(logDir, { recursive: true });
    const log = path.join(logDir, `${Date.now()}-${port}.log`);
    const fd = fs.openSync(log, 'a');
    let child;
    try {
      // detached: its own process group, so it survives the controller and its terminal signals.
      child = spawn(this.command.file, [...this.command.args, ...target.args, '--port', String(port)], {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: this.env,
      });
    } finally {
      fs.closeSync(fd);
    }
    if (child.pid === undefined) {
      const [err] = (await once(child, 'error')) as [Error];
      throw new Error(`${target.name}: cannot start ${this.command.file}: ${err.message}`);
    }
    trackChild(child);
    child.unref();
    this.log.info('replica started', { name: target.name, pid: child.pid, port, log });
    return {
      pid: child.pid,
      port,
      endpoint: `http://${this.host}:${port}`,
      startedAt: new Date().toISOString(),
      log,
    };
  }

  private async waitReady(
    target: DeploymentState,
    replicas: ReplicaState[],
    opts: FleetCallOptions,
    replaced: (index: number, r: ReplicaState) => void,
  ): Promise<void> {
    const { name, model, version } = target;
    const started = Date.now();
    const ready = new Set<number>();
    const portRetries = new Map<number, number>();
    let lastProgress = 0;
    for (;;) {
      if (opts.signal?.aborted)
        throw new Error(
          `${name}: aborted while waiting for readiness (${describeReason(opts.signal.reason)})`,
        );
      await Promise.all(
        replicas.map(async (r, i) => {
          if (!ready.has(i) && (await replicaReady(r.endpoint, model, version))) ready.add(i);
        }),
      );
      for (const [i, r] of replicas.entries()) {
        if (ready.has(i) || replicaAlive(r.pid)) continue;
        const tail = logTail(r.log);
        const retries = portRetries.get(i) ?? 0;
        if (/EADDRINUSE/.test(tail) && retries < PORT_RETRIES) {
          // Someone took the port between our probe and the server's bind: try another.
          portRetries.set(i, retries + 1);
          this.log.warn('port taken, retrying', { name, port: r.port });
          replicas[i] = await this.spawnReplica(target);
          replaced(i, replicas[i]!);
          continue;
        }
        const message =
          `${name}: replica on port ${r.port} (pid ${r.pid}) exited during startup (${await settledExit(r.pid)}); ` +
          `last lines of ${r.log}:\n${tail}`;
        if (childExit(r.pid)?.code === EXIT_MODEL_REFUSED) throw new DeployRefusedError(message);
        throw new Error(message);
      }
      if (ready.size === replicas.length) return;
      const elapsed = Date.now() - started;
      const waiting = replicas.filter((_, i) => !ready.has(i));
      if (elapsed > this.readyTimeoutMs) {
        const first = waiting[0]!;
        throw new Error(
          `${name}: ${ready.size}/${replicas.length} replicas ready after ${Math.round(elapsed / 1000)} s; ` +
            `not ready: ${waiting.map((r) => `${r.endpoint} (pid ${r.pid})`).join(', ')}; last lines of ${first.log}:\n${logTail(first.log)}`,
        );
      }
      if (Date.now() - lastProgress >= 1_000) {
        lastProgress = Date.now();
        opts.onProgress?.(
          `${name}: ${ready.size}/${replicas.length} replicas ready (${Math.round(elapsed / 1000)} s)`,
        );
      }
      // Woken early by an abort: the loop's top says what was being waited for.
      await sleep(100, opts.signal).catch(() => undefined);
    }
  }

  private async stopReplica(state: DeploymentState, r: ReplicaState): Promise<void> {
    // Never signal a recycled pid that now belongs to someone else.
    if (!isOurReplica(r.pid, r.port, state.model)) return;
    const how = await stopProcess(r.pid, this.stopGraceMs);
    this.log.info('replica stopped', { name: state.name, pid: r.pid, port: r.port, how });
  }
}

function toDeployment(state: DeploymentState, endpoints: string[]): Deployment {
  return {
    name: state.name,
    model: state.model,
    version: state.version,
    environment: state.environment,
    replicas: state.replicas,
    endpoints,
    ready: endpoints.length >= state.replicas,
    serving: state.serving,
  };
}

function sameArgs(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function describeReason(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason ?? 'aborted');
}

function checkReplicas(replicas: number): void {
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) {
    throw new Error(`replicas: expected an integer from 0 to ${MAX_REPLICAS}, got ${String(replicas)}`);
  }
}

function checkPositiveInt(field: string, v: number | undefined, min = 1): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) {
    throw new Error(`serving.${field}: expected an integer >= ${min}, got ${String(v)}`);
  }
}

function checkRequest(req: DeploymentRequest): void {
  checkModelName(req.model);
  checkVersion(req.version);
  if (!ENVIRONMENTS.includes(req.environment)) {
    throw new Error(
      `environment: expected one of ${ENVIRONMENTS.join(', ')}, got ${JSON.stringify(req.environment)}`,
    );
  }
  checkReplicas(req.replicas);
  if (!fs.existsSync(req.artifactPath)) throw new Error(`artifactPath: ${req.artifactPath} does not exist`);
  if (req.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(req.sha256)) {
    throw new Error(`sha256: expected 64 lowercase hex digits, got ${JSON.stringify(req.sha256)}`);
  }
  const s = req.serving ?? {};
  checkPositiveInt('maxBatchSize', s.maxBatchSize);
  checkPositiveInt('maxQueueDelayMs', s.maxQueueDelayMs, 0);
  checkPositiveInt('maxQueueSize', s.maxQueueSize);
  checkPositiveInt('instances', s.instances);
  checkPositiveInt('threads', s.threads);
  for (const b of s.preferredBatchSizes ?? []) checkPositiveInt('preferredBatchSizes[]', b);
  if (s.device !== undefined && s.device !== 'cpu' && s.device !== 'cuda') {
    throw new Error(`serving.device: expected cpu or cuda, got ${JSON.stringify(s.device)}`);
  }
}

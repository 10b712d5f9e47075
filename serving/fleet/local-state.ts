/**
 * What the local fleet knows about a deployment, on disk so a restarted controller (the worker)
 * finds the servers it started: `<state dir>/fleet/<name>.json`, replaced atomically.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Environment, ServingOptions } from './driver';

export interface ReplicaState {
  pid: number;
  port: number;
  endpoint: string;
  startedAt: string;
  log: string;
}

export interface DeploymentState {
  schema: 1;
  name: string;
  model: string;
  version: string;
  environment: Environment;
  artifactPath: string;
  sha256: string;
  serving: ServingOptions;
  /** Desired replica count. */
  replicas: number;
  /** `runway serve` arguments less --port: what makes two deployments "the same". */
  args: string[];
  instances: ReplicaState[];
  /** Replicas of a replaced artifact, stopped once their successors are ready. */
  retiring: ReplicaState[];
  updatedAt: string;
}

export class FleetStateStore {
  constructor(readonly dir: string) {}

  file(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  lockFile(name: string): string {
    return path.join(this.dir, `${name}.lock`);
  }

  logDir(name: string): string {
    return path.join(this.dir, 'logs', name);
  }

  read(name: string): DeploymentState | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.file(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as DeploymentState;
    } catch (err) {
      throw new Error(
        `fleet state ${this.file(name)} is not valid JSON (${String(err)}); remove it after stopping its servers`,
      );
    }
  }

  names(): string[] {
    let entries: string[];
    try {
      entries = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    return entries
      .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
      .map((f) => f.slice(0, -5))
      .sort();
  }

  write(state: DeploymentState): void {
    fs.mkdirSync(this.dir, { recursive: true });
    const tmp = path.join(
      this.dir,
      `.${state.name}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`,
    );
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, JSON.stringify({ ...state, updatedAt: new Date().toISOString() }, null, 2) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file(state.name));
  }

  remove(name: string): void {
    fs.rmSync(this.file(name), { force: true });
    fs.rmSync(this.logDir(name), { recursive: true, force: true });
  }
}

/**
 * Spawns `runway serve` as a child process (the compiled CLI: build first) on a free port and
 * waits for its ready line. `stop()` sends SIGTERM and resolves with the exit code; tests call
 * it in afterAll/finally, and a process that outlives its test is killed at exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { runwayBin } from '../../common/paths';

export interface ServeProcess {
  /** Base URL from the ready line, e.g. http://127.0.0.1:41234 */
  url: string;
  /** `host:port` of the gRPC service from the ready line, when started with --grpc-port. */
  grpc?: string;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far (its log). */
  stderr(): string;
  /** SIGTERM (or the given signal), then the exit code; SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

export interface ServeFailure {
  code: number | null;
  stdout: string;
  stderr: string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function launch(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [runwayBin, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUNWAY_LOG_LEVEL: process.env.RUNWAY_LOG_LEVEL ?? 'info' },
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Starts `runway serve <args> --port 0` and resolves once it prints its ready line. */
export function startServe(args: string[], timeoutMs = 60_000): Promise<ServeProcess> {
  const child = launch([...args, '--port', '0']);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, sig) => resolve(code ?? (sig ? -1 : null))),
  );
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  return new Promise<ServeProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop('SIGKILL');
      reject(new Error(`runway serve not ready after ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /ready at (http:\/\/\S+)([^\n]*)\n/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        const grpc = /grpcs? at (\S+)/.exec(m[2]!)?.[1];
        resolve({ url: m[1]!, ...(grpc ? { grpc } : {}), child, stderr: () => stderr, stop });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        Object.assign(new Error(`runway serve exited with ${code} before ready:\n${stderr}`), {
          code,
          stdout,
          stderr,
        }),
      );
    });
  });
}

/** Runs `runway serve` expecting it to fail at startup; resolves with its exit code and output. */
export function serveFailure(args: string[], timeoutMs = 60_000): Promise<ServeFailure> {
  const child = launch([...args, '--port', '0']);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`runway serve did not exit within ${timeoutMs} ms; stdout:\n${stdout}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdout!.on('data', () => {
      if (/ready at/.test(stdout)) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`runway serve started although it should have failed:\n${stdout}`));
      }
    });
  });
}

/**
 * The compiled CLI (`dist/cli/main.js`) as a child process, as a user runs it. Asynchronous, so a
 * worker running in the test's own process keeps answering the workflow while the CLI waits on it.
 */
import { spawn } from 'node:child_process';
import { runwayBin } from '../../common/paths';
import { testTemporal } from './temporal';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `runway ARGS` with `env` over the test's own environment; never rejects. */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runwayBin, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The CLI against the test Temporal server with a state directory (`RUNWAY_HOME`), and the test
 * platform's task queue when given, plus `env`.
 */
export async function runCliOn(
  home: string,
  args: string[],
  env: NodeJS.ProcessEnv & { RUNWAY_TASK_QUEUE?: string } = {},
): Promise<CliResult> {
  const endpoint = await testTemporal();
  return runCli(args, { RUNWAY_HOME: home, TEMPORAL_ADDRESS: endpoint.address, ...env });
}

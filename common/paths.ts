import os from 'node:os';
import path from 'node:path';

/** Repository root (this file compiles to dist/common/paths.js or runs from common/paths.ts). */
export const projectRoot = path.resolve(
  __dirname,
  __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..',
);

/** Platform state (Temporal DB, registry, fleet state, routes): one directory, kept between runs. */
export function stateDir(): string {
  return path.resolve(process.env.RUNWAY_HOME ?? path.join(projectRoot, '.runway'));
}

/** Cache for slow-to-build tools (Go binaries); outside the repo so fresh clones reuse it. */
export function toolCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.resolve(process.env.RUNWAY_TOOL_CACHE ?? path.join(base, 'runway'));
}

/** Compiled JS entry for a source module, usable from tests that run TypeScript directly. */
export function compiled(relFromRoot: string): string {
  return path.join(projectRoot, 'dist', relFromRoot.replace(/\.ts$/, '.js'));
}

/** Path of the CLI launcher, for spawning `runway serve` and friends as child processes. */
export const runwayBin = path.join(projectRoot, 'bin', 'runway.js');

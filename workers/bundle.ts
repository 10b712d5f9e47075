import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createLogger } from '../common/log';
import { projectRoot } from '../common/paths';

/**
 * Prebuilds the workflow bundle for production workers (`npm run build` runs this after tsc):
 * a worker that loads a bundle starts in well under a second instead of running webpack, and
 * every worker of one build runs byte-identical workflow code.
 */

export const workflowBundlePath = path.join(projectRoot, 'dist', 'workflows-bundle.js');

/** The workflows entry: compiled JS under dist/ when present, else the TypeScript source. */
export function workflowsEntry(): string | null {
  const candidates = [
    path.join(projectRoot, 'dist', 'workflows', 'index.js'),
    path.join(projectRoot, 'workflows', 'index.ts'),
  ];
  return candidates.find((f) => fs.existsSync(f)) ?? null;
}

export async function buildWorkflowBundle(
  workflowsPath: string,
  outFile = workflowBundlePath,
): Promise<number> {
  const { code } = await bundleWorkflowCode({ workflowsPath });
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  // Write then rename so a worker starting meanwhile never reads half a bundle.
  fs.writeFileSync(`${outFile}.tmp`, code);
  fs.renameSync(`${outFile}.tmp`, outFile);
  return code.length;
}

if (require.main === module) {
  const log = createLogger('bundle');
  const entry = workflowsEntry();
  if (!entry) {
    // The build must not fail while the workflows are being written; workers then use workflowsPath.
    log.warn('no workflows/index.ts yet: workflow bundle not built');
  } else {
    const started = Date.now();
    buildWorkflowBundle(entry)
      .then((bytes) =>
        log.info('workflow bundle built', {
          from: path.relative(projectRoot, entry),
          to: path.relative(projectRoot, workflowBundlePath),
          kb: Math.round(bytes / 1024),
          ms: Date.now() - started,
        }),
      )
      .catch((err: unknown) => {
        log.error('workflow bundle failed', { error: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      });
  }
}

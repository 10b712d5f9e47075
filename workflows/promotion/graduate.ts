/**
 * Step 10: the candidate at 100%; the registry's `production` alias moves to it, `previous` keeps
 * the old version for a fast rollback, which is archived.
 */
import { log } from '@temporalio/workflow';
import { quick, run } from '../activity-calls';
import type { Promotion } from './context';

export async function graduate(p: Promotion): Promise<void> {
  const { model, version, controls } = p;
  const base = p.baseline;
  const fully = controls.promoteFull ? `promoted fully by ${controls.promoteFull.by}` : undefined;
  if (fully) log.info(fully);
  p.enter('graduate', 'candidate to 100%, aliases moved');
  await p.setTraffic(
    p.split(100).filter((v) => v.weight > 0 || !base),
    'graduate: candidate at 100%',
    undefined,
  );
  await run('updateRegistry', `production → v${version}`, quick, {
    model,
    aliases: { production: version, previous: base?.version ?? null, staging: null },
    status: { version, status: 'production', reason: fully ?? 'graduated' },
  });
  if (base) {
    await run('updateRegistry', `v${base.version} archived`, quick, {
      model,
      status: { version: base.version, status: 'archived', reason: `replaced by v${version}` },
    });
  }
  p.outcome = { outcome: 'promoted', reason: fully ?? 'all steps passed' };
}

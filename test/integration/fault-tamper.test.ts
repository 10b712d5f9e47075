/**
 * An artifact changed on disk after it was pushed is caught by its sha256 before anything is
 * served: the promotion fails clearly and nothing of the candidate is deployed.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { testSpec, usePromotionPlatform } from '../helpers/promotion';

const platform = usePromotionPlatform();

describe('tampered artifact', () => {
  it('fails the promotion naming the digest mismatch, before serving', { timeout: 180_000 }, async () => {
    const model = 'fd-tamper';
    const spec = testSpec(model);
    await platform.bootstrap(model, spec, { serve: false });
    const v2 = await platform.deps.registry.get(model, '2');
    expect(v2).toBeDefined();
    fs.chmodSync(v2!.artifactPath, 0o644);
    fs.appendFileSync(v2!.artifactPath, Buffer.from('not the model that was pushed'));
    await platform.start(spec, '2');
    let reason = '';
    try {
      const result = await platform.result(model);
      reason = `${result.outcome}: ${result.reason}`;
    } catch (err) {
      reason = `failed: ${String((err as { cause?: unknown }).cause ?? err)}`;
    }
    expect(reason).toMatch(/^failed: /);
    expect(reason).toMatch(/sha256|digest/i);
    expect(reason).toContain(v2!.sha256.slice(0, 12));
    expect(await platform.deps.fleet.list({ model })).toEqual([]);
  });
});

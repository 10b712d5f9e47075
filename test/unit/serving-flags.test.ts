import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerServe } from '../../cli/commands/serve';
import { servingFlags } from '../../serving/fleet/driver';

/** `runway serve` as the CLI builds it, parsing flags without starting a server. */
function serveCommand(): Command {
  const program = new Command().exitOverride();
  registerServe(program);
  return program.commands.find((c) => c.name() === 'serve')!;
}

describe('servingFlags (every fleet driver starts `runway serve` with them)', () => {
  const all = {
    maxBatchSize: 8,
    preferredBatchSizes: [4, 8],
    maxQueueDelayMs: 3,
    maxQueueSize: 256,
    instances: 2,
    device: 'cuda' as const,
    threads: 3,
    driftReference: '{"features":[]}',
  };

  it('gives each knob once, as the flag runway serve reads back to the same value', () => {
    const flags = servingFlags(all);
    const names = flags.filter((f) => f.startsWith('--'));
    expect(new Set(names).size).toBe(names.length);
    expect(names).toHaveLength(Object.keys(all).length);
    const serve = serveCommand();
    serve.action(() => undefined);
    serve.parse(['--model', 'm.onnx', '--name', 'm', ...flags], { from: 'user' });
    expect(serve.opts()).toMatchObject(all);
  });

  it('leaves unset knobs to the server defaults', () => {
    expect(servingFlags({})).toEqual([]);
    expect(servingFlags({ maxBatchSize: 1, preferredBatchSizes: [] })).toEqual(['--max-batch-size', '1']);
  });
});

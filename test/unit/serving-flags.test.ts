import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { servingOptions } from '../../activities/fleet';
import { registerServe } from '../../cli/commands/serve';
import { servingFlags } from '../../serving/fleet/driver';
import { loadSpecText } from '../../specs/load';

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
    spinWait: true,
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

describe('a ModelSpec serving section reaches runway serve', () => {
  const spec = (serving: string): string =>
    [
      'name: churn-model',
      'owner: growth',
      'model:',
      '  signature:',
      '    inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]',
      '    outputs: [{ name: y, datatype: FP32, shape: [-1, 1] }]',
      'slos: { p99LatencyMs: 40, errorRate: 0.01 }',
      'evaluation: { dataset: data/eval.json, min: 0.7 }',
      serving,
      '',
    ].join('\n');

  it("spinWait: true turns --spin-wait on; unset leaves onnxruntime's threads sleeping", () => {
    const on = loadSpecText(spec('serving: { spinWait: true, threads: 2 }'), 'on.yaml');
    expect(servingFlags(servingOptions(on.serving))).toEqual(
      expect.arrayContaining(['--threads', '2', '--spin-wait']),
    );
    const off = loadSpecText(spec('serving: { threads: 2 }'), 'off.yaml');
    expect(servingFlags(servingOptions(off.serving))).not.toContain('--spin-wait');
  });

  it('refuses a spinWait that is not a boolean, naming the field', () => {
    expect(() => loadSpecText(spec('serving: { spinWait: sometimes }'), 'bad.yaml')).toThrow(
      /serving\.spinWait/,
    );
  });
});

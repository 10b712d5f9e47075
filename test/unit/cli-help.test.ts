/**
 * The CLI's help as a newcomer reads it: required options say so, a missing one is named without
 * the whole help after it, defaults read alike, and every description is written in one style.
 */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { actor } from '../../cli/actor';
import { buildProgram } from '../../cli/main';

function commands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(commands)];
}

function find(path: string): Command {
  let cmd = buildProgram();
  for (const name of path.split(' ')) cmd = cmd.commands.find((c) => c.name() === name)!;
  return cmd;
}

/** Parses argv with every command's exit and output captured instead of ending the process. */
function parse(argv: string[]): { error: string; code: string | undefined } {
  const program = buildProgram();
  let error = '';
  for (const c of commands(program)) {
    c.exitOverride();
    c.configureOutput({ writeErr: (s) => (error += s), writeOut: () => {} });
  }
  try {
    program.parse(['node', 'runway', ...argv]);
  } catch (err) {
    return { error, code: (err as { code?: string }).code };
  }
  return { error, code: undefined };
}

describe('runway --help', () => {
  it('marks every required option as required, in every command', () => {
    const required = commands(buildProgram()).flatMap((c) =>
      c.options.filter((o) => o.mandatory).map((o) => [c.name(), o]),
    ) as [string, Command['options'][number]][];
    expect(required.map(([c, o]) => `${c} ${o.long}`)).toEqual(
      expect.arrayContaining(['promote --version', 'rollback --reason', 'reject --reason', 'serve --model']),
    );
    for (const [, o] of required) expect(o.description).toMatch(/\(required\)$/);
    expect(find('promote').helpInformation()).toMatch(
      /--version <version> +registry version to promote \(required\)/,
    );
  });

  it('names a missing required option without reprinting the whole help', () => {
    const { error, code } = parse(['promote', 'spec.yaml']);
    expect(code).toBe('commander.missingMandatoryOptionValue');
    expect(error).toMatch(/required option '--version <version>' not specified/);
    expect(error).toMatch(/add --help for usage/);
    expect(error).not.toMatch(/Options:|Usage:/);
  });

  it('promote --wait lists every exit code; --meta shows no empty default', () => {
    const help = find('promote').helpInformation().replace(/\s+/g, ' ');
    expect(help).toMatch(/0 promoted, 1 failed, 2 rejected, 3 rolled back, 4 approval expired, 5 cancelled/);
    expect(help).not.toMatch(/default: \{\}/);
    expect(find('registry push').helpInformation()).not.toMatch(/default: \{\}/);
  });

  it('every --as and --pushed-by defaults the same way, and none is required', () => {
    const actors = commands(buildProgram()).flatMap((c) =>
      c.options
        .filter((o) => o.long === '--as' || o.long === '--pushed-by')
        .map((o) => [c.name(), o] as const),
    );
    expect(actors.map(([c]) => c)).toEqual(
      expect.arrayContaining(['promote', 'approve', 'reject', 'pause', 'rollback', 'push']),
    );
    for (const [name, o] of actors) {
      expect(o.mandatory, `${name} ${o.long}`).toBe(false);
      expect(o.description, `${name} ${o.long}`).toMatch(/\(default: \$RUNWAY_USER, else the OS user\)$/);
    }
    const saved = process.env.RUNWAY_USER;
    try {
      process.env.RUNWAY_USER = 'carol';
      expect(actor()).toBe('carol');
      expect(actor('dave')).toBe('dave');
      delete process.env.RUNWAY_USER;
      expect(actor()).toMatch(/.+/);
    } finally {
      if (saved === undefined) delete process.env.RUNWAY_USER;
      else process.env.RUNWAY_USER = saved;
    }
  });

  it('audit --since shows its date format', () => {
    expect(find('audit').helpInformation().replace(/\s+/g, ' ')).toMatch(/--since <date> .*YYYY-MM-DD/);
  });

  it('writes every description in one style: lowercase first letter, no closing period', () => {
    for (const c of commands(buildProgram())) {
      const texts = [c.description(), ...c.options.map((o) => o.description)].filter(Boolean);
      for (const text of texts) {
        expect(text, `${c.name()}: ${text}`).toMatch(/^[^A-Z]|^(ONNX|CI|CUDA|JSON|YAML|OIP|URL|ModelSpec)\b/);
        expect(text, `${c.name()}: ${text}`).not.toMatch(/\(default [^:]/);
        expect(text, `${c.name()}: ${text}`).not.toMatch(/\.$/);
      }
    }
  });
});

/**
 * A parser for the Prometheus text exposition format (0.0.4), enough for what prom-client
 * writes and what the format allows: comments, HELP/TYPE lines, samples with escaped label
 * values, special floats and optional timestamps. Written here rather than pulled in because the
 * format is small and no maintained parser on npm is lighter than these few lines.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseValue(text: string, line: number): number {
  switch (text) {
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    case 'NaN':
      return NaN;
  }
  const v = Number(text);
  if (text === '' || Number.isNaN(v)) throw new Error(`metrics line ${line}: bad value "${text}"`);
  return v;
}

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    let i = 0;
    while (i < line.length && /[A-Za-z0-9_:]/.test(line[i]!)) i++;
    const name = line.slice(0, i);
    if (name === '') throw new Error(`metrics line ${n + 1}: expected a metric name`);
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      for (;;) {
        while (line[i] === ' ' || line[i] === ',') i++;
        if (line[i] === '}') {
          i++;
          break;
        }
        const start = i;
        while (i < line.length && /[A-Za-z0-9_]/.test(line[i]!)) i++;
        const key = line.slice(start, i);
        if (key === '' || line[i] !== '=' || line[i + 1] !== '"') {
          throw new Error(`metrics line ${n + 1}: malformed label set`);
        }
        i += 2;
        let value = '';
        for (;;) {
          const c = line[i];
          if (c === undefined) throw new Error(`metrics line ${n + 1}: unterminated label value`);
          i++;
          if (c === '"') break;
          if (c === '\\') {
            const e = line[i++];
            value += e === 'n' ? '\n' : (e ?? '');
          } else value += c;
        }
        labels[key] = value;
      }
    }
    const rest = line.slice(i).trim().split(/\s+/);
    samples.push({ name, labels, value: parseValue(rest[0] ?? '', n + 1) });
  }
  return samples;
}

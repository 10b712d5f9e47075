/**
 * One-line structured logs on stderr. Humans read them at 3 a.m., machines grep them:
 * `2026-11-22T08:40:00.000Z INFO  server  model loaded  model=fraud version=1 ms=12`.
 * Values under keys that look like secrets are redacted so tokens never reach a log.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /token|secret|password|authorization/i;

function threshold(): number {
  const env = (process.env.RUNWAY_LOG_LEVEL ?? 'info').toLowerCase() as LogLevel;
  return order[env] ?? order.info;
}

function fmt(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value);
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

export function createLogger(
  component: string,
  sink: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Logger {
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (order[level] < threshold()) return;
    const parts = [new Date().toISOString(), level.toUpperCase().padEnd(5), component, msg];
    for (const [k, v] of Object.entries(fields ?? {})) {
      if (v === undefined) continue;
      parts.push(`${k}=${SECRET_KEY.test(k) ? '[redacted]' : fmt(v)}`);
    }
    sink(parts.join('  '));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (c) => createLogger(`${component}/${c}`, sink),
  };
}

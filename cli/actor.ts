/** Who is acting, the same way for every command: `--as` (or `--pushed-by`), else RUNWAY_USER, else the OS user. */
import os from 'node:os';

/** The help text's words for that default, shared so that every command says it alike. */
export const ACTOR_DEFAULT = 'default: $RUNWAY_USER, else the OS user';

export function actor(as?: string): string {
  const given = as?.trim() || process.env.RUNWAY_USER?.trim();
  if (given) return given;
  try {
    return os.userInfo().username;
  } catch {
    // No passwd entry (some containers): the login name from the environment.
    return process.env.USER ?? process.env.LOGNAME ?? 'unknown';
  }
}

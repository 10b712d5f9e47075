/**
 * The routes file: what a restarted router comes back with. Rewritten whole on every change via
 * a temporary file and rename, so a crash mid-write leaves the old file, never half of a new one.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Route } from './route';
import { parseRoute, RouteValidationError } from './schema';

interface RoutesDocument {
  routes: Record<string, Route>;
}

export async function loadRoutes(file: string): Promise<Map<string, Route>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  let doc: RoutesDocument;
  try {
    doc = JSON.parse(text) as RoutesDocument;
  } catch (err) {
    throw new Error(`routes file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || typeof doc.routes !== 'object' || doc.routes === null) {
    throw new Error(`routes file ${file}: expected {"routes": {"<model>": <route>}}`);
  }
  const routes = new Map<string, Route>();
  for (const [model, raw] of Object.entries(doc.routes)) {
    try {
      routes.set(model, parseRoute(raw));
    } catch (err) {
      if (err instanceof RouteValidationError)
        throw new Error(`routes file ${file}, model ${model}: ${err.message}`);
      throw err;
    }
  }
  return routes;
}

export async function saveRoutes(file: string, routes: ReadonlyMap<string, Route>): Promise<void> {
  const doc: RoutesDocument = {
    routes: Object.fromEntries([...routes].sort(([a], [b]) => a.localeCompare(b))),
  };
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    await fs.writeFile(tmp, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600 });
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { HistoryAndWorkflowId } from '@temporalio/common';
import type * as protoTypes from '@temporalio/proto';
import { projectRoot } from '../../common/paths';

/**
 * Recorded workflow histories: integration tests save the histories of the runs they drive, and
 * test/integration/replay.test.ts replays them against the current workflow code, so a change
 * that would break in-flight promotions (missing `patched()`) fails CI.
 * Files use the JSON format of `temporal workflow show --output json`, so the CLI can record too.
 */
export const historiesDir = path.join(projectRoot, 'test', 'fixtures', 'histories');

/**
 * ProtoJSON conversion with the protobufjs copy that @temporalio/proto's types belong to.
 * @temporalio/common's historyToJSON/historyFromJSON load their own nested protobufjs copy here
 * (the root holds protobufjs 6 for onnx-proto, so npm cannot share one 8.x copy) and then fail
 * with "type must be a Type", because protojson checks `instanceof Type` against its own copy.
 */
interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): History | null;
}
type History = protoTypes.temporal.api.history.v1.IHistory;
// Loaded with plain require (not ESM interop) because patchProtobufRoot needs the CommonJS root.
const protoRequire = createRequire(require.resolve('@temporalio/proto'));
const protojson = protoRequire('protobufjs/ext/protojson') as ProtoJson;
const proto = protoRequire('@temporalio/proto') as typeof protoTypes;
const { patchProtobufRoot } = protoRequire('@temporalio/proto/lib/patch-protobuf-root') as {
  patchProtobufRoot<T>(root: T): T & { lookupType(name: string): unknown };
};
const historyType = patchProtobufRoot(proto).lookupType('temporal.api.history.v1.History');

export function historyToJSON(history: History): string {
  return JSON.stringify(
    protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)),
    null,
    2,
  );
}

export function historyFromJSON(json: unknown): History {
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { events?: unknown }).events)) {
    throw new TypeError('not a workflow history: expected an object with an "events" array');
  }
  // Unknown fields come from newer servers; tolerate them as Temporal's own loader does.
  const history = protojson.fromJson(historyType, json, { ignoreUnknownFields: true });
  if (!history) throw new TypeError('not a workflow history');
  return history;
}

/** Fetches the workflow's history and writes `<dir>/<name>.json`; returns the path. */
export async function saveHistory(
  client: Client,
  workflowId: string,
  name: string,
  dir = historiesDir,
): Promise<string> {
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name))
    throw new Error(`history name ${JSON.stringify(name)}: use letters, digits, . _ -`);
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const file = path.join(dir, `${name}.json`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, historyToJSON(history) + '\n');
  return file;
}

/** Every `*.json` history in dir, sorted, with its file name (without .json) as the workflow ID. */
export function loadHistories(dir = historiesDir): HistoryAndWorkflowId[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({
      workflowId: f.replace(/\.json$/, ''),
      history: historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))),
    }));
}

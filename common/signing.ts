/**
 * Signed decisions: the canonical message a person (or CI) signs with an ed25519 key, the keyring
 * of public keys that may sign, and the one verification both the workflow's activity and
 * `runway audit` run. Node's crypto only: no dependency, and never imported by workflow code.
 *
 * A decision names everything it decides on: the model and version, the promotion (workflow id
 * and its first run id), the spec's and the artifact's sha256, the decision itself, a digest of
 * the comment, the time and a nonce. A valid signature copied to another promotion, another
 * version or another comment therefore verifies nowhere else.
 */
import crypto from 'node:crypto';
import { sha256Hex } from './digest';

export const DECISIONS = ['approve', 'reject', 'rollback', 'promote-full', 'promote'] as const;
export type Decision = (typeof DECISIONS)[number];

/** What is signed. Every field is a string (or null), so the canonical form is unambiguous. */
export interface DecisionMessage {
  kind: 'runway.decision/v1';
  decision: Decision;
  /** Who decides: the keyring name the signing key must belong to. */
  by: string;
  model: string;
  version: string;
  workflowId: string;
  /** The promotion's first run; null in the `promote` message, which creates it. */
  firstRunId: string | null;
  specSha256: string;
  artifactSha256: string;
  /** sha256 (hex) of the comment or reason exactly as sent ('' when none). */
  commentSha256: string;
  /** ISO time of signing. */
  at: string;
  /** 128 random bits (hex): a decision counts once. */
  nonce: string;
}

/** What travels in a signal's or update's payload (`signed`) and in PromotionInput. */
export interface SignedDecision {
  message: DecisionMessage;
  /** ed25519 signature of canonicalMessage(message), base64. */
  signature: string;
  /** Fingerprint of the signing key (see fingerprint()). */
  key: string;
}

/** The bytes that are signed: a domain tag and the message as JSON with sorted keys. */
export function canonicalMessage(m: DecisionMessage): Buffer {
  const sorted = Object.fromEntries(
    Object.keys(m)
      .sort()
      .map((k) => [k, (m as unknown as Record<string, unknown>)[k]]),
  );
  return Buffer.from(`runway-decision-v1\n${JSON.stringify(sorted)}`, 'utf8');
}

export const commentDigest = (text: string | undefined): string => sha256Hex(text ?? '');

const PUBLIC_PREFIX = 'ed25519:';

/** `ed25519:<base64 of the 32 raw key bytes>`: the form the keyring and `keys init` use. */
export function publicKeyText(key: crypto.KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.x) throw new Error('not an ed25519 key');
  return PUBLIC_PREFIX + Buffer.from(jwk.x, 'base64url').toString('base64');
}

/** Parses `ed25519:<base64>` (32 bytes) or a PEM public key; throws with what was expected. */
export function parsePublicKey(text: string): crypto.KeyObject {
  const t = text.trim();
  if (t.startsWith('-----BEGIN')) {
    const key = crypto.createPublicKey(t);
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error(`expected an ed25519 key, got ${key.asymmetricKeyType}`);
    return key;
  }
  if (!t.startsWith(PUBLIC_PREFIX)) throw new Error('expected "ed25519:<base64>" or a PEM public key');
  const raw = Buffer.from(t.slice(PUBLIC_PREFIX.length), 'base64');
  if (raw.length !== 32) throw new Error(`expected 32 key bytes after "ed25519:", got ${raw.length}`);
  return crypto.createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
}

/** `SHA256:<base64, unpadded>` of the raw public key, as ssh-keygen prints fingerprints. */
export function fingerprint(key: crypto.KeyObject): string {
  const raw = Buffer.from(publicKeyText(key).slice(PUBLIC_PREFIX.length), 'base64');
  return 'SHA256:' + crypto.createHash('sha256').update(raw).digest('base64').replace(/=+$/, '');
}

export function generateKeyPair(): { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject } {
  return crypto.generateKeyPairSync('ed25519');
}

export function signDecision(message: DecisionMessage, privateKey: crypto.KeyObject): SignedDecision {
  const publicKey = crypto.createPublicKey(privateKey);
  return {
    message,
    signature: crypto.sign(null, canonicalMessage(message), privateKey).toString('base64'),
    key: fingerprint(publicKey),
  };
}

export const newNonce = (): string => crypto.randomBytes(16).toString('hex');

// ---------------------------------------------------------------------------------------------
// Keyring

export interface KeyringEntry {
  /** The approver's (or CI's) name, as decisions name it (`--as`). */
  name: string;
  publicKey: crypto.KeyObject;
  fingerprint: string;
  /** From this time on the key signs nothing (ISO). */
  revoked?: string;
  /** Free text: whose key, which CI. */
  comment?: string;
}

export interface Keyring {
  /** Where it was read from, for messages. */
  source: string;
  entries: KeyringEntry[];
}

/** Where a keyring is read from (workers/keyring.ts: a file or a ConfigMap). */
export interface KeyringSource {
  /** Where it lives, for messages. */
  readonly location: string;
  /** The keyring as it is now; throws KeyringError naming a malformed entry. */
  load(): Promise<Keyring>;
}

export class KeyringError extends Error {
  override name = 'KeyringError';
}

/**
 * Validates a keyring document: `{ keys: [ { name, publicKey, fingerprint?, revoked?, comment? } ] }`
 * (or the list alone). A malformed entry fails the whole keyring, naming the entry: a worker must
 * not start with half a keyring.
 */
export function parseKeyring(data: unknown, source: string): Keyring {
  const list = Array.isArray(data)
    ? data
    : typeof data === 'object' && data !== null && Array.isArray((data as { keys?: unknown }).keys)
      ? (data as { keys: unknown[] }).keys
      : undefined;
  if (!list) throw new KeyringError(`keyring ${source}: expected { keys: [ { name, publicKey, ... } ] }`);
  const entries: KeyringEntry[] = [];
  const seen = new Map<string, string>();
  list.forEach((raw, i) => {
    const e = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    const where = `keyring ${source}: keys[${i}]${typeof e.name === 'string' ? ` (${e.name})` : ''}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new KeyringError(`${where}: expected a mapping { name, publicKey, fingerprint?, revoked? }`);
    const known = new Set(['name', 'publicKey', 'fingerprint', 'revoked', 'comment']);
    const unknown = Object.keys(e).filter((k) => !known.has(k));
    if (unknown.length) throw new KeyringError(`${where}: unknown field ${unknown.join(', ')}`);
    if (typeof e.name !== 'string' || !e.name.trim())
      throw new KeyringError(`${where}: name: expected a non-empty string`);
    if (typeof e.publicKey !== 'string')
      throw new KeyringError(`${where}: publicKey: expected "ed25519:<base64>"`);
    let publicKey: crypto.KeyObject;
    try {
      publicKey = parsePublicKey(e.publicKey);
    } catch (err) {
      throw new KeyringError(`${where}: publicKey: ${(err as Error).message}`);
    }
    const fp = fingerprint(publicKey);
    if (e.fingerprint !== undefined && e.fingerprint !== fp)
      throw new KeyringError(`${where}: fingerprint ${String(e.fingerprint)} does not match the key (${fp})`);
    let revoked: string | undefined;
    if (e.revoked !== undefined) {
      // YAML turns an unquoted date into a Date.
      const d = e.revoked instanceof Date ? e.revoked : new Date(String(e.revoked));
      if (Number.isNaN(d.getTime()))
        throw new KeyringError(`${where}: revoked: expected a date such as 2026-12-01 or an ISO time`);
      revoked = d.toISOString();
    }
    const other = seen.get(fp);
    if (other) throw new KeyringError(`${where}: the same key as ${other}`);
    seen.set(fp, `keys[${i}] (${e.name})`);
    entries.push({
      name: e.name.trim(),
      publicKey,
      fingerprint: fp,
      ...(revoked ? { revoked } : {}),
      ...(typeof e.comment === 'string' ? { comment: e.comment } : {}),
    });
  });
  return { source, entries };
}

// ---------------------------------------------------------------------------------------------
// Verification

/** What the decision must name: the promotion as the workflow knows it. */
export interface DecisionContext {
  model: string;
  version: string;
  workflowId: string;
  /** null for the `promote` message. */
  firstRunId: string | null;
  specSha256: string;
  artifactSha256: string;
}

export interface VerifyRequest {
  signed: unknown;
  decision: Decision;
  /** The name in the payload (`approver` / `by`): the key must be this person's. */
  by: string;
  /** The comment or reason in the payload: its digest must be the signed one. */
  comment?: string;
  context: DecisionContext;
  /** When the decision may be made (ISO, inclusive); absent: no bound on that side. */
  window?: { from?: string; to?: string };
  /** Time of verification (ISO): the key must not be revoked by then. */
  now: string;
}

export type VerifyResult =
  | { ok: true; fingerprint: string; signer: string; at: string; nonce: string; revoked?: string }
  | { ok: false; reason: string; fingerprint?: string; nonce?: string };

const isString = (v: unknown): v is string => typeof v === 'string';

/** Reads the signed part of a payload; undefined when it is absent (unsigned). */
export function signedPart(payload: unknown): unknown {
  return typeof payload === 'object' && payload !== null
    ? (payload as { signed?: unknown }).signed
    : undefined;
}

/**
 * Every check but the nonce's novelty (that needs the promotion's memory: the workflow keeps it).
 * The first failing check is the reason; the order puts the most telling reason first.
 */
export function verifyDecision(req: VerifyRequest, keyring: Keyring | undefined): VerifyResult {
  const s = req.signed as Partial<SignedDecision> | undefined;
  if (s === undefined || s === null)
    return {
      ok: false,
      reason: 'unsigned: this promotion requires a signed decision (approval.identity: signed)',
    };
  const m = s.message as Partial<DecisionMessage> | undefined;
  if (
    typeof s !== 'object' ||
    !isString(s.signature) ||
    !isString(s.key) ||
    typeof m !== 'object' ||
    m === null
  )
    return { ok: false, reason: 'malformed signature: expected signed { message, signature, key }' };
  const fields = [
    'decision',
    'by',
    'model',
    'version',
    'workflowId',
    'specSha256',
    'artifactSha256',
    'commentSha256',
    'at',
    'nonce',
  ] as const;
  const missing = fields.filter((f) => !isString(m[f]));
  if (m.kind !== 'runway.decision/v1' || missing.length || !(m.firstRunId === null || isString(m.firstRunId)))
    return {
      ok: false,
      reason: `malformed signed message${missing.length ? `: ${missing.join(', ')} missing` : ''}`,
    };
  const message = m as DecisionMessage;
  const base = { fingerprint: s.key, nonce: message.nonce };
  if (!keyring)
    return { ...base, ok: false, reason: 'no keyring is configured on the worker (platform config keyring)' };
  const entry = keyring.entries.find((e) => e.fingerprint === s.key);
  if (!entry) return { ...base, ok: false, reason: `key ${s.key} is not in the keyring` };
  let valid = false;
  try {
    valid = crypto.verify(
      null,
      canonicalMessage(message),
      entry.publicKey,
      Buffer.from(s.signature, 'base64'),
    );
  } catch {
    valid = false;
  }
  if (!valid)
    return {
      ...base,
      ok: false,
      reason: `signature does not verify against key ${entry.fingerprint} (${entry.name})`,
    };
  if (entry.name !== req.by.trim())
    return { ...base, ok: false, reason: `key ${entry.fingerprint} belongs to ${entry.name}, not ${req.by}` };
  if (message.by !== req.by.trim())
    return {
      ...base,
      ok: false,
      reason: `signed in the name of ${message.by}, sent in the name of ${req.by}`,
    };
  if (entry.revoked && entry.revoked <= req.now)
    return {
      ...base,
      ok: false,
      reason: `key ${entry.fingerprint} (${entry.name}) was revoked on ${entry.revoked}`,
    };
  if (message.decision !== req.decision)
    return {
      ...base,
      ok: false,
      reason: `signed for the decision "${message.decision}", sent as "${req.decision}"`,
    };
  const c = req.context;
  const mismatch: string[] = [];
  if (message.model !== c.model) mismatch.push(`model ${message.model} (this is ${c.model})`);
  if (message.version !== c.version) mismatch.push(`version ${message.version} (this is v${c.version})`);
  if (message.workflowId !== c.workflowId) mismatch.push(`workflow ${message.workflowId}`);
  if (message.firstRunId !== c.firstRunId)
    mismatch.push(`run ${String(message.firstRunId)} (this promotion is ${String(c.firstRunId)})`);
  if (message.specSha256 !== c.specSha256) mismatch.push(`spec sha256 ${message.specSha256.slice(0, 12)}…`);
  if (message.artifactSha256 !== c.artifactSha256)
    mismatch.push(`artifact sha256 ${message.artifactSha256.slice(0, 12)}…`);
  if (mismatch.length)
    return { ...base, ok: false, reason: `signed for another promotion: ${mismatch.join(', ')}` };
  if (message.commentSha256 !== commentDigest(req.comment))
    return { ...base, ok: false, reason: 'the comment is not the one that was signed (tampered)' };
  const at = new Date(message.at);
  if (Number.isNaN(at.getTime()))
    return { ...base, ok: false, reason: `signed time ${message.at} is not a time` };
  const iso = at.toISOString();
  if (req.window?.from && iso < req.window.from)
    return {
      ...base,
      ok: false,
      reason: `signed at ${iso}, before the approval window opened (${req.window.from})`,
    };
  if (req.window?.to && iso > req.window.to)
    return {
      ...base,
      ok: false,
      reason: `signed at ${iso}, after the approval window closed (${req.window.to})`,
    };
  return {
    ok: true,
    fingerprint: entry.fingerprint,
    signer: entry.name,
    at: iso,
    nonce: message.nonce,
    ...(entry.revoked ? { revoked: entry.revoked } : {}),
  };
}

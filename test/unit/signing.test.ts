/**
 * Signed decisions, the pure part: the canonical message, signing and every reason a signature
 * is refused, and the keyring's validation (a malformed entry is named).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  canonicalMessage,
  commentDigest,
  fingerprint,
  generateKeyPair,
  parseKeyring,
  publicKeyText,
  verifyDecision,
  type DecisionContext,
  type Keyring,
  type VerifyRequest,
} from '../../common/signing';
import { initKey, keyDir, loadSigningKey, sign } from '../../cli/signer';

const alice = generateKeyPair();
const bob = generateKeyPair();
const ring = (revokedAlice?: string): Keyring =>
  parseKeyring(
    {
      keys: [
        {
          name: 'alice',
          publicKey: publicKeyText(alice.publicKey),
          ...(revokedAlice ? { revoked: revokedAlice } : {}),
        },
        { name: 'bob', publicKey: publicKeyText(bob.publicKey), fingerprint: fingerprint(bob.publicKey) },
      ],
    },
    'test',
  );
const ctx: DecisionContext = {
  model: 'fd',
  version: '2',
  workflowId: 'promotion:fd',
  firstRunId: 'run-1',
  specSha256: 'a'.repeat(64),
  artifactSha256: 'b'.repeat(64),
};
const at = new Date('2026-12-01T12:00:00Z');
const now = '2026-12-01T12:01:00.000Z';

describe('signed decisions', () => {
  it('the canonical form does not depend on key order', () => {
    const s = sign(alice.privateKey, 'approve', 'alice', ctx, 'ok', at);
    const reordered = Object.fromEntries(Object.entries(s.message).reverse()) as typeof s.message;
    expect(canonicalMessage(reordered).equals(canonicalMessage(s.message))).toBe(true);
    expect(canonicalMessage(s.message).toString()).toMatch(/^runway-decision-v1\n\{"artifactSha256"/);
  });

  it('verifies a decision signed by the named approver, for this promotion', () => {
    const signed = sign(alice.privateKey, 'approve', 'alice', ctx, 'ok', at);
    const r = verifyDecision(
      { signed, decision: 'approve', by: 'alice', comment: 'ok', context: ctx, now },
      ring(),
    );
    expect(r).toEqual({
      ok: true,
      fingerprint: fingerprint(alice.publicKey),
      signer: 'alice',
      at: at.toISOString(),
      nonce: signed.message.nonce,
    });
  });

  it('refuses each kind of forgery with its own reason', () => {
    const signed = sign(alice.privateKey, 'approve', 'alice', ctx, 'ok', at);
    const base: VerifyRequest = {
      signed,
      decision: 'approve',
      by: 'alice',
      comment: 'ok',
      context: ctx,
      now,
    };
    const reason = (over: Partial<VerifyRequest>, keyring: Keyring | null = ring()) => {
      const r = verifyDecision({ ...base, ...over }, keyring ?? undefined);
      return r.ok ? 'accepted' : r.reason;
    };
    expect(reason({ signed: undefined as never })).toMatch(/^unsigned/);
    expect(reason({ comment: 'ok, and v9 too' })).toMatch(/comment is not the one that was signed/);
    expect(reason({ by: 'bob' })).toMatch(/belongs to alice, not bob/);
    // alice's key, signed in bob's name, sent as alice's
    expect(reason({ signed: sign(alice.privateKey, 'approve', 'bob', ctx, 'ok', at) })).toMatch(
      /signed in the name of bob, sent in the name of alice/,
    );
    expect(reason({ decision: 'reject' })).toMatch(/signed for the decision "approve"/);
    expect(reason({ context: { ...ctx, version: '3' } })).toMatch(
      /another promotion: version 2 \(this is v3\)/,
    );
    expect(reason({ context: { ...ctx, firstRunId: 'run-2' } })).toMatch(/another promotion: run run-1/);
    expect(reason({ context: { ...ctx, artifactSha256: 'c'.repeat(64) } })).toMatch(/artifact sha256/);
    expect(reason({ now: '2026-12-02T00:00:00Z' }, ring('2026-12-01T12:00:30Z'))).toMatch(
      /was revoked on 2026-12-01T12:00:30/,
    );
    expect(reason({}, null)).toMatch(/no keyring/);
    expect(
      reason({}, parseKeyring({ keys: [{ name: 'bob', publicKey: publicKeyText(bob.publicKey) }] }, 't')),
    ).toMatch(/is not in the keyring/);
    expect(reason({ window: { from: '2026-12-01T12:30:00Z' } })).toMatch(/before the approval window opened/);
    expect(reason({ window: { to: '2026-12-01T11:30:00Z' } })).toMatch(/after the approval window closed/);
    // a signature made by another key under alice's fingerprint
    const forged = {
      ...signed,
      signature: crypto.sign(null, canonicalMessage(signed.message), bob.privateKey).toString('base64'),
    };
    expect(reason({ signed: forged })).toMatch(/does not verify/);
    // the message changed after signing
    expect(
      reason({ signed: { ...signed, message: { ...signed.message, at: '2026-12-01T12:00:01Z' } } }),
    ).toMatch(/does not verify/);
    expect(commentDigest(undefined)).toBe(commentDigest(''));
  });

  it('a key revoked after the decision still verifies at the decision time, and says when it was revoked', () => {
    const signed = sign(alice.privateKey, 'approve', 'alice', ctx, 'ok', at);
    const r = verifyDecision(
      { signed, decision: 'approve', by: 'alice', comment: 'ok', context: ctx, now: at.toISOString() },
      ring('2026-12-05'),
    );
    expect(r).toMatchObject({ ok: true, revoked: '2026-12-05T00:00:00.000Z' });
  });

  it('a malformed keyring names the entry and what is wrong', () => {
    const good = { name: 'alice', publicKey: publicKeyText(alice.publicKey) };
    const err = (keys: unknown) => {
      try {
        parseKeyring({ keys }, 'ring.yaml');
      } catch (e) {
        return (e as Error).message;
      }
      return 'parsed';
    };
    expect(err([good, { name: 'bob', publicKey: 'ed25519:AAAA' }])).toBe(
      'keyring ring.yaml: keys[1] (bob): publicKey: expected 32 key bytes after "ed25519:", got 3',
    );
    expect(err([{ ...good, fingerprint: 'SHA256:nope' }])).toMatch(
      /keys\[0\] \(alice\): fingerprint SHA256:nope does not match/,
    );
    expect(err([{ ...good, revoked: 'soon' }])).toMatch(/keys\[0\] \(alice\): revoked: expected a date/);
    expect(err([good, { ...good, name: 'mallory' }])).toMatch(
      /keys\[1\] \(mallory\): the same key as keys\[0\] \(alice\)/,
    );
    expect(err([{ publicKey: good.publicKey }])).toMatch(/keys\[0\]: name: expected a non-empty string/);
    expect(err([{ ...good, role: 'admin' }])).toMatch(/unknown field role/);
    expect(err([good])).toBe('parsed');
    expect(() => parseKeyring({}, 'x')).toThrow(/expected \{ keys: \[/);
  });

  it('a private key is written 0600, never over another, and not used once others can read it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-keys-'));
    try {
      const file = path.join(dir, 'carol.key');
      const { line } = initKey('carol', { file });
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(line).toMatch(
        /^- \{ name: "carol", publicKey: "ed25519:[A-Za-z0-9+/]{43}=", fingerprint: "SHA256:/,
      );
      expect(() => initKey('carol', { file })).toThrow(/already exists: `runway keys show --as carol`/);
      expect(loadSigningKey('carol', file).key.asymmetricKeyType).toBe('ed25519');
      fs.chmodSync(file, 0o644);
      expect(() => loadSigningKey('carol', file)).toThrow(/readable by others \(mode 644\): chmod 600/);
      expect(() => loadSigningKey('dave', path.join(dir, 'dave.key'))).toThrow(
        /no signing key for dave at .*: create one with `runway keys init --as dave`/,
      );
      expect(() => initKey('no spaces please', { file: path.join(dir, 'x.key') })).toThrow(
        /--as: expected a name/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('private keys live in the user config dir (XDG), unless RUNWAY_KEY_DIR says otherwise', () => {
    expect(keyDir({ XDG_CONFIG_HOME: '/home/a/.cfg' })).toBe('/home/a/.cfg/runway/keys');
    expect(keyDir({})).toBe(path.join(os.homedir(), '.config', 'runway', 'keys'));
    expect(keyDir({ XDG_CONFIG_HOME: '/x', RUNWAY_KEY_DIR: '/secrets/keys' })).toBe('/secrets/keys');
  });
});

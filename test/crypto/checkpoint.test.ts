import * as nodeCrypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as fc from 'fast-check';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import {
  type CheckpointFields,
  checkpointBodyHash,
  formatCheckpoint,
  parseCheckpointBody,
  parseSignedNote,
  signCheckpoint,
  signNote,
  verifyCheckpoint,
} from '../../src/ledger/checkpoint.js';
import { base64DecodeStrict, base64Encode, fromHex, toHex } from '../../src/ledger/hash.js';
import { type Signer, generateKeyPair, parsePrivateKey, parseVerifierKey, signerFromSeed } from '../../src/keys/keys.js';

ed.hashes.sha512 = (m) => new Uint8Array(sha512(m));

interface VecKey { name: string; seed: string; publicKey: string; keyId: string; verifierKey: string }
interface VecCp {
  fields: Omit<CheckpointFields, 'root' | 'prev'> & { root: string; prev: string | null };
  signedBy: number[];
  bodyHash: string;
  body: string;
  note: string;
}
const V = JSON.parse(readFileSync(new URL('../vectors/checkpoint.json', import.meta.url), 'utf8')) as { keys: VecKey[]; checkpoints: VecCp[] };
const GO = JSON.parse(readFileSync(new URL('../vectors/signed-note-go.json', import.meta.url), 'utf8')) as {
  privateKey: string;
  verifierKey: string;
  text: string;
  note: string;
};

const ORIGIN = 'sealtrail.example/test';
const k0 = V.keys[0] as VecKey;
const k1 = V.keys[1] as VecKey;
const signer0 = signerFromSeed(k0.name, fromHex(k0.seed));
const signer1 = signerFromSeed(k1.name, fromHex(k1.seed));
const trusted0 = [parseVerifierKey(k0.verifierKey)];
const fieldsOf = (c: VecCp): CheckpointFields => ({
  ...c.fields,
  root: fromHex(c.fields.root),
  prev: c.fields.prev === null ? null : fromHex(c.fields.prev),
});
const cp1 = V.checkpoints[1] as VecCp; // seal at size 8, announces key 1
const NOTE = cp1.note;

describe('our checkpoint vectors (test/vectors/checkpoint.json)', () => {
  it('fixed key + fixed fields give exactly the stored body and note', () => {
    expect(toHex(signer0.publicKey)).toBe(k0.publicKey);
    expect(toHex(signer0.keyId)).toBe(k0.keyId);
    expect(signer0.verifierKey).toBe(k0.verifierKey);
    for (const c of V.checkpoints) {
      const body = formatCheckpoint(fieldsOf(c));
      expect(body).toBe(c.body);
      expect(toHex(checkpointBodyHash(body))).toBe(c.bodyHash);
      const signers = c.signedBy.map((i) => [signer0, signer1][i] as Signer);
      expect(signCheckpoint(body, signers)).toBe(c.note);
    }
  });

  it('the vectors check out with independent code (node sha256 for key ID and prev, noble for Ed25519)', () => {
    for (const k of V.keys) {
      const id = nodeCrypto
        .createHash('sha256')
        .update(Buffer.concat([Buffer.from(k.name), Buffer.from([0x0a, 0x01]), Buffer.from(k.publicKey, 'hex')]))
        .digest('hex')
        .slice(0, 8);
      expect(id).toBe(k.keyId);
    }
    V.checkpoints.forEach((c, i) => {
      const [body, sigLine] = c.note.split('\n\n') as [string, string];
      expect(body + '\n').toBe(c.body);
      const raw = Buffer.from(sigLine.trim().split(' ')[2] as string, 'base64');
      const key = V.keys[c.signedBy[0] as number] as VecKey;
      expect(raw.subarray(0, 4).toString('hex')).toBe(key.keyId);
      expect(ed.verify(raw.subarray(4), Buffer.from(c.body), fromHex(key.publicKey), { zip215: false })).toBe(true);
      if (i > 0) {
        const prev = nodeCrypto.createHash('sha256').update((V.checkpoints[i - 1] as VecCp).body).digest('base64');
        expect(c.body).toContain(`sealtrail-prev ${prev}\n`);
      }
    });
  });

  it('verify: each vector verifies with the right keys; rotation key surfaces; key 2 is not trusted by key 1 alone', () => {
    for (const c of V.checkpoints.slice(0, 2)) {
      const r = verifyCheckpoint(c.note, trusted0, ORIGIN);
      expect(r.ok).toBe(true);
    }
    const r1 = verifyCheckpoint(cp1.note, trusted0, ORIGIN);
    if (!r1.ok) throw new Error(r1.detail);
    expect(r1.checkpoint.size).toBe(8);
    expect(r1.checkpoint.kind).toBe('seal');
    expect(r1.checkpoint.keys).toEqual([k1.verifierKey]);
    expect(toHex(r1.checkpoint.bodyHash)).toBe(cp1.bodyHash);
    // The third checkpoint is signed by the announced key only: a verifier that has not followed the
    // rotation sees a trusted NAME with an unknown key ID.
    const third = (V.checkpoints[2] as VecCp).note;
    const r2 = verifyCheckpoint(third, trusted0, ORIGIN);
    expect(r2.ok).toBe(false);
    if (!r2.ok) expect(r2.reason).toBe('key_id_mismatch');
    const r3 = verifyCheckpoint(third, [...trusted0, parseVerifierKey(r1.checkpoint.keys[0] as string)], ORIGIN);
    expect(r3.ok).toBe(true);
  });
});

describe('signed-note interoperability (Go sumdb/note vector)', () => {
  it('signNote reproduces the Go note byte for byte and parseSignedNote reads it', () => {
    const s = parsePrivateKey(GO.privateKey);
    expect(signNote(GO.text, [s])).toBe(GO.note);
    const p = parseSignedNote(GO.note);
    if (!p.ok) throw new Error(p.detail);
    expect(p.value.body).toBe(GO.text);
    expect(p.value.signatures[0]?.name).toBe('PeterNeumann');
    expect(toHex(p.value.signatures[0]?.keyId as Uint8Array)).toBe('c74f20a3');
    const v = parseVerifierKey(GO.verifierKey);
    expect(v.verify(new TextEncoder().encode(p.value.body), p.value.signatures[0]?.signature as Uint8Array)).toBe(true);
    // It is a valid note but not a sealtrail checkpoint (no format line): reported as an unknown format.
    const r = verifyCheckpoint(GO.note, [v], 'PeterNeumann');
    expect(r.ok ? 'ok' : r.reason).toBe('unknown_version');
    if (!r.ok) expect(r.signatureVerified).toBe(true);
  });
});

// ---- tampering ----------------------------------------------------------------------------------

function reasonOf(text: string | Uint8Array, trusted = trusted0, origin = ORIGIN): string {
  const r = verifyCheckpoint(text, trusted, origin);
  return r.ok ? 'ok' : r.reason;
}
const [BODY, SIGS] = [cp1.body, NOTE.slice(cp1.body.length + 1)];
const SIG_B64 = (SIGS.trim().split(' ')[2] as string);

function resign(body: string, signers: Signer[]): string {
  return signNote(body, signers);
}

describe('tampering is detected with a precise reason', () => {
  it('the untouched note verifies', () => {
    expect(reasonOf(NOTE)).toBe('ok');
    expect(reasonOf(new TextEncoder().encode(NOTE))).toBe('ok');
  });

  it('a changed body (size, root, time, seq) → bad_signature', () => {
    expect(reasonOf(NOTE.replace('\n8\n', '\n9\n'))).toBe('bad_signature');
    expect(reasonOf(NOTE.replace('sealtrail-seg 0', 'sealtrail-seg 1'))).toBe('bad_signature');
    expect(reasonOf(NOTE.replace('1764300005000', '1764300005001'))).toBe('bad_signature');
    // A single bit of the root: decode, flip, re-encode (so the base64 stays canonical).
    const rootB64 = BODY.split('\n')[2] as string;
    const root = base64DecodeStrict(rootB64) as Uint8Array;
    root[5] = (root[5] as number) ^ 0x10;
    expect(reasonOf(NOTE.replace(rootB64, base64Encode(root)))).toBe('bad_signature');
  });

  it('every single-bit flip of the signature bytes → bad_signature', () => {
    const raw = base64DecodeStrict(SIG_B64) as Uint8Array;
    for (let bit = 32; bit < raw.length * 8; bit += 5) {
      const f = raw.slice();
      f[bit >> 3] = (f[bit >> 3] as number) ^ (1 << (bit & 7));
      expect(reasonOf(NOTE.replace(SIG_B64, base64Encode(f))), `bit ${bit}`).toBe('bad_signature');
    }
  });

  it('a flipped key ID (same name) → key_id_mismatch', () => {
    const raw = base64DecodeStrict(SIG_B64) as Uint8Array;
    raw[0] = (raw[0] as number) ^ 1;
    expect(reasonOf(NOTE.replace(SIG_B64, base64Encode(raw)))).toBe('key_id_mismatch');
  });

  it('wrong origin → wrong_origin, even though the signature itself is valid', () => {
    const r = verifyCheckpoint(NOTE, trusted0, 'sealtrail.example/other');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toBe('wrong_origin');
      expect(r.signatureVerified).toBe(true);
      expect(r.detail).toContain('sealtrail.example/other');
    }
  });

  it('a newline injected into the origin can neither be formatted nor parsed as an origin', () => {
    const f = fieldsOf(cp1);
    expect(() => formatCheckpoint({ ...f, origin: `${ORIGIN}\n8` })).toThrow(/line breaks/);
    expect(() => formatCheckpoint({ ...f, origin: `${ORIGIN}\u2028x` })).toThrow(/line breaks/);
    // An attacker splices a line into the signed note: the lines shift and the body no longer parses.
    expect(reasonOf(NOTE.replace(`${ORIGIN}\n`, `${ORIGIN}\nevil.example/log\n`))).toBe('bad_format');
    // Even re-signed with the trusted key itself (a confused signer), such a body cannot be signed or read.
    const shifted = BODY.replace(`${ORIGIN}\n`, `${ORIGIN}\n7\n`);
    expect(() => signCheckpoint(shifted, [signer0])).toThrow(RangeError);
    expect(reasonOf(signNote(shifted, [signer0]))).toBe('bad_format');
  });

  it('CR, trailing space, doubled space, empty line, duplicate line → bad_format', () => {
    expect(reasonOf(NOTE.replace('\n8\n', '\r\n8\n'))).toBe('bad_format');
    expect(reasonOf(NOTE.replaceAll('\n', '\r\n'))).toBe('bad_format');
    expect(reasonOf(NOTE.replace('\n8\n', '\n8 \n'))).toBe('bad_format');
    expect(reasonOf(NOTE.replace(`${ORIGIN}\n`, `${ORIGIN} \n`))).toBe('bad_format');
    expect(reasonOf(NOTE.replace('sealtrail-seg 0', 'sealtrail-seg  0'))).toBe('bad_format');
    expect(reasonOf(NOTE.replace('sealtrail-seg 0\n', 'sealtrail-seg 0\nsealtrail-seg 0\n'))).toBe('bad_format');
    expect(reasonOf(NOTE.replace(SIGS, SIGS + SIGS))).toBe('bad_format'); // duplicate signature line
    expect(reasonOf(NOTE.replace('\n\n—', '\n\n\n—'))).toBe('bad_format');
    expect(reasonOf(NOTE.replace('— ', '-- '))).toBe('bad_format');
    expect(reasonOf(NOTE.replace('— ', '—  '))).toBe('bad_format');
    expect(reasonOf(NOTE + ' ')).toBe('bad_format');
    expect(reasonOf(NOTE.slice(0, -1))).toBe('bad_format'); // no final newline
    expect(reasonOf(NOTE.replace('\t', '') + '\t\n')).toBe('bad_format');
  });

  it('non-canonical numbers and base64 → bad_format, even when freshly signed by the trusted key', () => {
    const cases = [
      BODY.replace('\n8\n', '\n08\n'),
      BODY.replace('\n8\n', '\n+8\n'),
      BODY.replace('\n8\n', '\n9007199254740993\n'),
      BODY.replace('sealtrail-seg 0', 'sealtrail-seg 00'),
      BODY.replace(/\n([A-Za-z0-9+/]{43})=\n/, (_m, r: string) => `\n${r}\n`), // padding stripped
      BODY.replace('sealtrail-time 1764300000000 1764300005000', 'sealtrail-time 1764300005000 1764300000000'),
      BODY.replace('sealtrail-kind seal', 'sealtrail-kind Seal'),
      BODY.replace('sealtrail-prev Tfe6', 'sealtrail-prev Tfe7').replace('sealtrail-prev Tfe7', 'sealtrail-prev '),
      BODY + 'sealtrail-extra 1\n',
      BODY.replace(/sealtrail-key .*\n/, ''), // (valid: no key line) — sanity row, expected ok below
    ];
    const reasons = cases.map((b) => reasonOf(resign(b, [signer0])));
    expect(reasons.slice(0, -1)).toEqual(Array(cases.length - 1).fill('bad_format'));
    expect(reasons.at(-1)).toBe('ok');
    // A root of 31 bytes.
    const short = BODY.replace(BODY.split('\n')[2] as string, base64Encode(new Uint8Array(31)));
    expect(reasonOf(resign(short, [signer0]))).toBe('bad_format');
  });

  it('stripped signature line → no_trusted_signature (and the detail says it was stripped)', () => {
    const r = verifyCheckpoint(BODY, trusted0, ORIGIN);
    expect(r.ok ? 'ok' : r.reason).toBe('no_trusted_signature');
    if (!r.ok) expect(r.detail).toMatch(/no signature/);
    expect(reasonOf(BODY + '\n')).toBe('no_trusted_signature');
  });

  it('re-signed with another key: other name → no_trusted_signature; same name → key_id_mismatch', () => {
    const mallory = generateKeyPair('mallory.example/log').signer;
    expect(reasonOf(resign(BODY, [mallory]))).toBe('no_trusted_signature');
    const impostor = generateKeyPair(ORIGIN).signer; // claims the trusted name
    expect(reasonOf(resign(BODY, [impostor]))).toBe('key_id_mismatch');
    // Signed by both the trusted key and another one: the other is ignored, as c2sp.org/signed-note says.
    const both = verifyCheckpoint(resign(BODY, [impostor, signer0]), trusted0, ORIGIN);
    expect(both.ok).toBe(true);
    if (both.ok) {
      expect(both.ignored.length).toBe(1);
      expect(both.keyIdMismatches.length).toBe(1);
    }
    // A valid trusted signature next to a broken trusted one: the whole note is rejected.
    const good = resign(BODY, [signer0]);
    const goodLine = good.slice(BODY.length + 1);
    const raw = base64DecodeStrict(goodLine.trim().split(' ')[2] as string) as Uint8Array;
    raw[10] = (raw[10] as number) ^ 1;
    const trusted2 = [...trusted0, parseVerifierKey(signer1.verifierKey)];
    const mixed = BODY + '\n' + resign(BODY, [signer1]).slice(BODY.length + 1) + `— ${ORIGIN} ${base64Encode(raw)}\n`;
    expect(reasonOf(mixed, trusted2)).toBe('bad_signature');
  });

  it('downgraded or unknown format version → unknown_version, never bad_signature', () => {
    for (const v of ['0', '2', '01', '1.0', '']) {
      const tampered = NOTE.replace('sealtrail-format 1', `sealtrail-format ${v}`);
      const r = verifyCheckpoint(tampered, trusted0, ORIGIN);
      expect(r.ok ? 'ok' : r.reason, v).toBe('unknown_version');
      if (!r.ok) expect(r.signatureVerified).toBe(false);
    }
    // A genuine newer checkpoint, validly signed: unknown_version with signatureVerified = true.
    const newer = resign(BODY.replace('sealtrail-format 1', 'sealtrail-format 2'), [signer0]);
    const r = verifyCheckpoint(newer, trusted0, ORIGIN);
    expect(r.ok ? 'ok' : r.reason).toBe('unknown_version');
    if (!r.ok) {
      expect(r.signatureVerified).toBe(true);
      expect(r.detail).toMatch(/version "2"/);
    }
    // The version line removed altogether (a plain C2SP checkpoint).
    const plain = resign(BODY.split('\n').slice(0, 3).join('\n') + '\n', [signer0]);
    expect(reasonOf(plain)).toBe('unknown_version');
  });

  it('invalid UTF-8, a BOM, and oversized notes → bad_format', () => {
    const bytes = new TextEncoder().encode(NOTE);
    const broken = bytes.slice();
    broken[3] = 0xff;
    expect(reasonOf(broken)).toBe('bad_format');
    expect(reasonOf(new Uint8Array([0xef, 0xbb, 0xbf, ...bytes]))).toBe('bad_format');
    expect(reasonOf(BODY + 'x'.repeat(70_000) + '\n\n' + SIGS)).toBe('bad_format');
  });
});

describe('formatCheckpoint / parseCheckpointBody', () => {
  it('round-trips every field, including several rotation keys', () => {
    const keys = [generateKeyPair('a.example/k').verifierKey, generateKeyPair('b.example/k').verifierKey];
    const f: CheckpointFields = {
      origin: 'sealtrail.example/node a', // spaces inside are allowed (C2SP only recommends against them)
      size: 9007199254740991,
      root: new Uint8Array(32).fill(7),
      seq: 123456789,
      kind: 'heartbeat',
      prev: new Uint8Array(32).fill(9),
      fromMs: 0,
      toMs: 1,
      keys,
    };
    const p = parseCheckpointBody(formatCheckpoint(f));
    if (!p.ok) throw new Error(p.detail);
    expect({ ...p.value, root: toHex(p.value.root), prev: toHex(p.value.prev as Uint8Array) }).toMatchObject({
      ...f,
      root: toHex(f.root),
      prev: toHex(f.prev as Uint8Array),
      version: 1,
      keys,
    });
  });

  it('refuses invalid fields with the field named', () => {
    const f = fieldsOf(cp1);
    expect(() => formatCheckpoint({ ...f, origin: '' })).toThrow(/origin/);
    expect(() => formatCheckpoint({ ...f, origin: ' lead' })).toThrow(/origin/);
    expect(() => formatCheckpoint({ ...f, size: -1 })).toThrow(/size/);
    expect(() => formatCheckpoint({ ...f, size: 1.5 })).toThrow(/size/);
    expect(() => formatCheckpoint({ ...f, root: new Uint8Array(31) })).toThrow(/root/);
    expect(() => formatCheckpoint({ ...f, prev: new Uint8Array(3) })).toThrow(/prev/);
    expect(() => formatCheckpoint({ ...f, fromMs: 5, toMs: 4 })).toThrow(/fromMs/);
    expect(() => formatCheckpoint({ ...f, keys: ['not a key'] })).toThrow(/verifier key/);
    expect(() => formatCheckpoint({ ...f, keys: [k1.verifierKey, k1.verifierKey] })).toThrow(/twice/);
  });

  it('signNote refuses bodies that would not survive parsing', () => {
    expect(() => signNote('no newline', [signer0])).toThrow(RangeError);
    expect(() => signNote('a\rb\n', [signer0])).toThrow(/carriage return/);
    expect(() => signNote('a\n', [])).toThrow(/signer/);
    expect(() => signNote('a\n', [signer0, signer0])).toThrow(/twice/);
  });
});

describe('exhaustive and random mutation', () => {
  it('every single-byte change anywhere in a signed note is refused, and nothing throws', () => {
    const bytes = new TextEncoder().encode(NOTE);
    const accepted: string[] = [];
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x20, 0x80]) {
        const b = bytes.slice();
        b[i] = (b[i] as number) ^ mask;
        const r = verifyCheckpoint(b, trusted0, ORIGIN);
        if (r.ok) accepted.push(`byte ${i} ^ ${mask}`);
      }
    }
    expect(accepted).toEqual([]);
  });

  it('random fields: format → sign → verify round-trips; the body hash chains', () => {
    fc.assert(
      fc.property(
        fc.record({
          size: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
          root: fc.uint8Array({ minLength: 32, maxLength: 32 }),
          seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
          kind: fc.constantFrom('seal' as const, 'heartbeat' as const),
          prev: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: null }),
          fromMs: fc.nat({ max: 2 ** 45 }),
          span: fc.nat({ max: 10 ** 9 }),
        }),
        (r) => {
          const f: CheckpointFields = { origin: ORIGIN, size: r.size, root: r.root, seq: r.seq, kind: r.kind, prev: r.prev, fromMs: r.fromMs, toMs: r.fromMs + r.span };
          const note = signCheckpoint(formatCheckpoint(f), [signer0]);
          const v = verifyCheckpoint(note, trusted0, ORIGIN);
          if (!v.ok) throw new Error(`${v.reason}: ${v.detail}`);
          expect(v.checkpoint.size).toBe(f.size);
          expect(toHex(v.checkpoint.root)).toBe(toHex(f.root));
          expect(v.checkpoint.prev === null ? null : toHex(v.checkpoint.prev)).toBe(f.prev === null ? null : toHex(f.prev));
          expect([v.checkpoint.seq, v.checkpoint.kind, v.checkpoint.fromMs, v.checkpoint.toMs]).toEqual([f.seq, f.kind, f.fromMs, f.toMs]);
          expect(toHex(v.checkpoint.bodyHash)).toBe(toHex(checkpointBodyHash(formatCheckpoint(f))));
        },
      ),
      { numRuns: 100 },
    );
  });
});

import * as nodeCrypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { SealtrailError } from '../../src/errors.js';
import { base64DecodeStrict, base64Encode, fromHex, toHex } from '../../src/ledger/hash.js';
import {
  SMALL_ORDER_ENCODINGS,
  formatVerifierKey,
  generateKeyPair,
  keyId,
  parsePrivateKey,
  parseVerifierKey,
  publicKeyProblem,
  signerFromSeed,
  validateKeyName,
  verifyEd25519,
} from '../../src/keys/keys.js';

ed.hashes.sha512 = (m) => new Uint8Array(sha512(m));

interface EdCase { name: string; seed: string; publicKey: string; message: string; signature: string }
const RFC = JSON.parse(readFileSync(new URL('../vectors/ed25519-rfc8032.json', import.meta.url), 'utf8')) as { cases: EdCase[] };
const GO = JSON.parse(readFileSync(new URL('../vectors/signed-note-go.json', import.meta.url), 'utf8')) as {
  privateKey: string;
  verifierKey: string;
  text: string;
  note: string;
  otherVerifierKeys: string[];
};

// L, the order of the base point (RFC 8032 §5.1).
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const leToBig = (b: Uint8Array) => BigInt('0x' + toHex(Uint8Array.from(b).reverse()) || '0');
const bigToLe = (n: bigint) => fromHex(n.toString(16).padStart(64, '0')).reverse();
const spki = (pub: Uint8Array) =>
  nodeCrypto.createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), pub]), format: 'der', type: 'spki' });

describe('RFC 8032 §7.1 vectors (test/vectors/ed25519-rfc8032.json)', () => {
  for (const c of RFC.cases) {
    it(`${c.name}: public key, deterministic signature, verification (ours, noble strict, node)`, () => {
      const s = signerFromSeed('rfc8032', fromHex(c.seed));
      expect(toHex(s.publicKey)).toBe(c.publicKey);
      const msg = fromHex(c.message);
      expect(toHex(s.sign(msg))).toBe(c.signature);
      // An independent implementation agrees on every byte.
      expect(toHex(ed.getPublicKey(fromHex(c.seed)))).toBe(c.publicKey);
      expect(toHex(ed.sign(msg, fromHex(c.seed)))).toBe(c.signature);
      const sig = fromHex(c.signature);
      expect(verifyEd25519(s.publicKey, msg, sig)).toBe(true);
      expect(ed.verify(sig, msg, s.publicKey, { zip215: false })).toBe(true);
      const wrong = new Uint8Array([...msg, 0]);
      expect(verifyEd25519(s.publicKey, wrong, sig)).toBe(false);
    });
  }
});

describe('strict verification rules (docs/format.md "Signature rules")', () => {
  const c = RFC.cases[1] as EdCase;
  const pub = fromHex(c.publicKey);
  const msg = fromHex(c.message);
  const sig = fromHex(c.signature);

  it('rejects a non-canonical S (S + L) and S = L', () => {
    const s = leToBig(sig.subarray(32));
    expect(s < L).toBe(true);
    const malleable = new Uint8Array(64);
    malleable.set(sig.subarray(0, 32));
    malleable.set(bigToLe(s + L), 32); // same point [S]B, different bytes: signature malleability
    expect(toHex(malleable)).not.toBe(toHex(sig));
    // Measured (docs/format.md): OpenSSL 3.0 behind node:crypto on Node 20.20 rejects S ≥ L as well; our own
    // check keeps the rule independent of the OpenSSL build.
    expect(nodeCrypto.verify(null, msg, spki(pub), malleable)).toBe(false);
    expect(verifyEd25519(pub, msg, malleable)).toBe(false);
    expect(ed.verify(malleable, msg, pub, { zip215: false })).toBe(false);
    // S = L exactly is also out of range.
    const sEqL = new Uint8Array(64);
    sEqL.set(sig.subarray(0, 32));
    sEqL.set(bigToLe(L), 32);
    expect(verifyEd25519(pub, msg, sEqL)).toBe(false);
  });

  it('the small-order encodings are exactly the 8 torsion points (checked with noble)', () => {
    expect(new Set(SMALL_ORDER_ENCODINGS).size).toBe(8);
    for (const h of SMALL_ORDER_ENCODINGS) {
      const p = ed.Point.fromHex(h, false);
      expect(p.isSmallOrder(), h).toBe(true);
      expect(p.toHex()).toBe(h); // canonical
    }
  });

  it('rejects small-order public keys, including the identity-key forgery that lax verifiers accept', () => {
    for (const h of SMALL_ORDER_ENCODINGS) {
      expect(publicKeyProblem(fromHex(h))).toMatch(/small-order|canonical/);
    }
    // A = identity, R = identity, S = 0: [0]B = I + [k]I holds for EVERY message.
    const identity = fromHex(SMALL_ORDER_ENCODINGS[0] as string);
    const forged = new Uint8Array(64);
    forged.set(identity, 0);
    // Measured (docs/format.md): node:crypto / OpenSSL alone ACCEPTS this forgery; our small-order check refuses it.
    expect(nodeCrypto.verify(null, new TextEncoder().encode('any message'), spki(identity), forged)).toBe(true);
    expect(verifyEd25519(identity, new TextEncoder().encode('any message'), forged)).toBe(false);
    expect(ed.verify(forged, new TextEncoder().encode('any message'), identity, { zip215: false })).toBe(false);
    const text = formatVerifierKeyUnchecked('small', identity);
    expect(() => parseVerifierKey(text)).toThrow(/small-order/);
  });

  it('rejects non-canonical point encodings of A and R', () => {
    // y = p (≥ p): encodes y = 0 non-canonically.
    const yp = fromHex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
    expect(publicKeyProblem(yp)).toMatch(/canonical/);
    // x = 0 with the sign bit set (y = 1): the identity spelled with a negative zero.
    const negZero = fromHex('0100000000000000000000000000000000000000000000000000000000000080');
    expect(publicKeyProblem(negZero)).toMatch(/canonical/);
    // A y with no x on the curve.
    let notOnCurve: Uint8Array | null = null;
    for (let i = 2; i < 50 && notOnCurve === null; i++) {
      const e = new Uint8Array(32);
      e[0] = i;
      try {
        ed.Point.fromBytes(e, false);
      } catch {
        notOnCurve = e;
      }
    }
    expect(notOnCurve).not.toBeNull();
    expect(publicKeyProblem(notOnCurve as Uint8Array)).toMatch(/not a point/);
    // R non-canonical (y ≥ p) in an otherwise well-formed signature.
    const bad = sig.slice();
    bad.set(yp, 0);
    expect(verifyEd25519(pub, msg, bad)).toBe(false);
    // R small order.
    const r0 = sig.slice();
    r0.set(fromHex(SMALL_ORDER_ENCODINGS[2] as string), 0);
    expect(verifyEd25519(pub, msg, r0)).toBe(false);
  });

  it('wrong lengths and bit flips are false, never exceptions', () => {
    expect(verifyEd25519(pub, msg, sig.subarray(0, 63))).toBe(false);
    expect(verifyEd25519(pub.subarray(0, 31), msg, sig)).toBe(false);
    for (let bit = 0; bit < 512; bit += 7) {
      const f = sig.slice();
      f[bit >> 3] = (f[bit >> 3] as number) ^ (1 << (bit & 7));
      expect(verifyEd25519(pub, msg, f), `bit ${bit}`).toBe(false);
    }
  });
});

function formatVerifierKeyUnchecked(name: string, pub: Uint8Array): string {
  const body = new Uint8Array(33);
  body[0] = 1;
  body.set(pub, 1);
  return `${name}+${toHex(keyId(name, pub))}+${base64Encode(body)}`;
}

describe('signed-note key texts', () => {
  it('parses the Go sumdb/note keys (test/vectors/signed-note-go.json) and agrees on the key ID', () => {
    const s = parsePrivateKey(GO.privateKey);
    expect(s.name).toBe('PeterNeumann');
    expect(toHex(s.keyId)).toBe('c74f20a3');
    expect(s.verifierKey).toBe(GO.verifierKey);
    const v = parseVerifierKey(GO.verifierKey);
    expect(toHex(v.publicKey)).toBe(toHex(s.publicKey));
    for (const k of GO.otherVerifierKeys) expect(parseVerifierKey(k).text).toBe(k); // incl. '+' inside the base64
    expect(formatVerifierKey('TEST', parseVerifierKey(GO.otherVerifierKeys[1] as string).publicKey)).toBe(GO.otherVerifierKeys[1]);
  });

  it('generateKeyPair round-trips through the texts', () => {
    const { signer, privateKey, verifierKey } = generateKeyPair('sealtrail.example/node-a');
    expect(privateKey.startsWith('PRIVATE+KEY+sealtrail.example/node-a+')).toBe(true);
    const again = parsePrivateKey(privateKey + '\n');
    expect(toHex(again.publicKey)).toBe(toHex(signer.publicKey));
    const v = parseVerifierKey(verifierKey + '\n');
    const msg = new TextEncoder().encode('hello\n');
    expect(v.verify(msg, again.sign(msg))).toBe(true);
    expect(toHex(v.keyId)).toBe(toHex(keyId('sealtrail.example/node-a', signer.publicKey)));
  });

  it('refuses mangled verifier keys with a reason (and never as a crash)', () => {
    const k = GO.verifierKey;
    const cases: [string, RegExp][] = [
      ['', /expected <name>/],
      [k.replace('c74f20a3', 'c74f20a4'), /does not match/],
      [k.replace('c74f20a3', 'C74F20A3'), /lower-case hex/],
      [k.replace('PeterNeumann', 'Peter Neumann'), /spaces/],
      [k + 'A', /canonical base64/],
      [k.replace('+ARpc', '+AhRpc'), /canonical base64|33 bytes/],
      [k.replace('+ARpc', '+Ahpc'), /unsupported key type|does not match/],
      [k + '\n\n', /single line/],
      [GO.privateKey, /PRIVATE key/],
    ];
    for (const [text, why] of cases) {
      let err: unknown;
      try {
        parseVerifierKey(text);
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(SealtrailError);
      expect((err as SealtrailError).code).toBe('KEY_INVALID');
      expect((err as Error).message, text).toMatch(why);
    }
  });

  it('private key errors never contain key material', () => {
    const secretPart = GO.privateKey.split('+').slice(4).join('+');
    const mangled = [
      GO.privateKey.replace('c74f20a3', '00000000'),
      GO.privateKey.replace('PRIVATE+KEY+', 'PRIVATE+KEX+'),
      GO.privateKey + 'AA',
      GO.privateKey.replace('+AYEK', '+AoEK'),
    ];
    for (const m of mangled) {
      let msg = '';
      try {
        parsePrivateKey(m);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg, m).not.toBe('');
      expect(msg).not.toContain(secretPart);
      expect(msg).not.toContain(secretPart.slice(0, 12));
    }
  });

  it('key names follow c2sp.org/signed-note', () => {
    expect(validateKeyName('sealtrail.example/node-a')).toBeNull();
    expect(validateKeyName('')).toMatch(/empty/);
    expect(validateKeyName('a+b')).toMatch(/\+/);
    expect(validateKeyName('a b')).toMatch(/spaces/);
    expect(validateKeyName('a\u00a0b')).toMatch(/spaces/);
    expect(validateKeyName('a\u2028b')).toMatch(/spaces/);
    expect(validateKeyName('a\u0007b')).toMatch(/control/);
    expect(validateKeyName('a\ud800b')).toMatch(/Unicode/);
  });

  it('strict base64: non-canonical trailing bits and missing padding are refused', () => {
    expect(base64DecodeStrict('AQ==')).toEqual(new Uint8Array([1]));
    expect(base64DecodeStrict('AR==')).toBeNull(); // same byte, non-zero unused bits
    expect(base64DecodeStrict('AQ')).toBeNull();
    expect(base64DecodeStrict('A Q==')).toBeNull();
    expect(base64DecodeStrict('AQ-_')).toBeNull();
  });
});

/**
 * Micro-benchmark behind the choices in src/ledger/hash.ts and src/keys/keys.ts: SHA-256 via
 * node:crypto `crypto.hash` vs `createHash` vs @noble/hashes at the sizes the ledger hashes
 * (64-byte chain step, 65-byte node, ~300-byte leaf), and Ed25519 sign/verify via node:crypto vs
 * @noble/ed25519. Prints the median of several rounds (ns/op and ops/s).
 *
 * Run: npm run build && node dist/bench/hash.js            (results: docs/benchmarks.md "Hashing")
 */
import * as nodeCrypto from 'node:crypto';
import * as ed from '@noble/ed25519';
import { sha256 as nobleSha256, sha512 } from '@noble/hashes/sha2.js';
import { chainHash, leafHash, nodeHash } from '../src/ledger/hash.js';
import { parseVerifierKey, signerFromSeed, verifyEd25519 } from '../src/keys/keys.js';

ed.hashes.sha512 = (m) => new Uint8Array(sha512(m));

const ROUNDS = Number(process.env.ROUNDS ?? 5);

function bench(label: string, n: number, fn: () => unknown): void {
  for (let i = 0; i < Math.min(n, 2000); i++) fn(); // warm up
  const results: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    results.push(Number(process.hrtime.bigint() - t0) / n);
  }
  results.sort((a, b) => a - b);
  const med = results[Math.floor(results.length / 2)] as number;
  console.log(`${label.padEnd(44)} ${med.toFixed(0).padStart(7)} ns/op ${Math.round(1e9 / med).toLocaleString('en-US').padStart(11)} ops/s`);
}

const oneShot = (nodeCrypto as unknown as { hash: (a: string, d: Uint8Array, e: 'buffer') => Buffer }).hash;

console.log(`node ${process.version}, openssl ${process.versions.openssl}, ${ROUNDS} rounds, median`);
for (const size of [64, 65, 300]) {
  const buf = nodeCrypto.randomBytes(size);
  const n = 200_000;
  bench(`sha256 ${size} B  crypto.hash`, n, () => oneShot('sha256', buf, 'buffer'));
  bench(`sha256 ${size} B  createHash().update().digest()`, n, () => nodeCrypto.createHash('sha256').update(buf).digest());
  bench(`sha256 ${size} B  @noble/hashes sha256`, n / 4, () => nobleSha256(buf));
}
const entry = nodeCrypto.randomBytes(299);
const h1 = nodeCrypto.randomBytes(32);
const h2 = nodeCrypto.randomBytes(32);
bench('leafHash(299 B entry)  [hash.ts]', 200_000, () => leafHash(entry));
bench('nodeHash(32, 32)       [hash.ts]', 200_000, () => nodeHash(h1, h2));
bench('chainHash(32, 32)      [hash.ts]', 200_000, () => chainHash(h1, h2));

const seed = new Uint8Array(32).fill(7);
const msg = new TextEncoder().encode('sealtrail.example/test\n123\n' + 'x'.repeat(200) + '\n');
const signer = signerFromSeed('bench', seed);
const sig = signer.sign(msg);
const priv = nodeCrypto.createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
  format: 'der',
  type: 'pkcs8',
});
const pubObj = nodeCrypto.createPublicKey(priv);
bench('ed25519 sign   node:crypto', 5_000, () => nodeCrypto.sign(null, msg, priv));
bench('ed25519 sign   @noble/ed25519', 1_000, () => ed.sign(msg, seed));
bench('ed25519 verify node:crypto (raw)', 5_000, () => nodeCrypto.verify(null, msg, pubObj, sig));
const verifier = parseVerifierKey(signer.verifierKey);
bench('ed25519 verify Verifier.verify (strict, keys.ts)', 5_000, () => verifier.verify(msg, sig));
bench('ed25519 verify verifyEd25519 (strict + key check)', 2_000, () => verifyEd25519(signer.publicKey, msg, sig));
bench('ed25519 verify @noble/ed25519 zip215:false', 500, () => ed.verify(sig, msg, signer.publicKey, { zip215: false }));

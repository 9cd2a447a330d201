/**
 * Our own segment test vectors (docs/format.md "Segments" → "Test vectors"): two consecutive
 * segments built from fixed inputs with the pure format functions, checked byte for byte against
 * test/vectors/segment-v1/. Regenerate (only on a deliberate format change) with
 *   SEALTRAIL_WRITE_VECTORS=1 npx vitest run test/ledger/segment-vectors.test.ts
 * Also: the streaming parser on every chunk size, and its format errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { signerFromSeed } from '../../src/keys/keys.js';
import { checkpointBodyHash, formatCheckpoint, signCheckpoint, verifyCheckpoint } from '../../src/ledger/checkpoint.js';
import { chainSeed, leafHash, sha256, toHex } from '../../src/ledger/hash.js';
import { Frontier } from '../../src/ledger/merkle.js';
import {
  FRAME_OVERHEAD,
  SegmentFormatError,
  SegmentParser,
  encodeHeader,
  encodeTrailer,
  parseSegment,
  readFooter,
  segmentFileName,
  writeFrame,
} from '../../src/ledger/segment-format.js';
import { verifierFor } from '../../src/keys/keys.js';

const VDIR = path.resolve(import.meta.dirname, '../vectors/segment-v1');
const ORIGIN = 'sealtrail.test/vector';
const SEED = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

/** ResourceLogs{ scope_logs{ log_records{ body{ string_value } } } } — a minimal OTLP entry (bodies < 100 bytes). */
function otlpEntry(body: string): Uint8Array {
  const s = new TextEncoder().encode(body);
  const any = [0x0a, s.length, ...s]; // AnyValue.string_value = 1
  const rec = [0x2a, any.length, ...any]; // LogRecord.body = 5
  const scope = [0x12, rec.length, ...rec]; // ScopeLogs.log_records = 2
  return Uint8Array.from([0x12, scope.length, ...scope]); // ResourceLogs.scope_logs = 2
}

const INPUT = {
  origin: ORIGIN,
  keySeedHex: toHex(SEED),
  segments: [
    { seq: 0, createdMs: 1764300000000, sealMs: 1764300001000, bodies: ['user alice logged in', 'user alice read record 17', 'user bob denied'] },
    { seq: 1, createdMs: 1764300001000, sealMs: 1764300002000, bodies: ['config changed by carol', 'user alice logged out'] },
  ],
};

function build() {
  const signer = signerFromSeed(ORIGIN, SEED);
  const frontier = Frontier.empty();
  let chain = chainSeed(ORIGIN);
  let prevBody: { hash: Uint8Array; toMs: number } | null = null;
  const files: Uint8Array[] = [];
  const expected: Record<string, unknown>[] = [];
  for (const s of INPUT.segments) {
    const entries = s.bodies.map(otlpEntry);
    const startFrontier = frontier.clone();
    const chainPrev = chain;
    const header = encodeHeader({
      seq: s.seq,
      firstIndex: frontier.size,
      createdMs: s.createdMs,
      origin: ORIGIN,
      prevCheckpointHash: prevBody ? prevBody.hash : new Uint8Array(32),
      chainPrev: chain,
      frontier,
    });
    const frames = new Uint8Array(entries.reduce((n, e) => n + FRAME_OVERHEAD + e.length, 0));
    let off = 0;
    const leaves: string[] = [];
    const chains: string[] = [];
    for (const e of entries) {
      const r = writeFrame(frames, off, e, chain);
      chain = r.chain;
      frontier.append(r.leaf);
      off += r.length;
      leaves.push(toHex(r.leaf));
      chains.push(toHex(r.chain));
    }
    const body = formatCheckpoint({
      origin: ORIGIN,
      size: frontier.size,
      root: frontier.root(),
      seq: s.seq,
      kind: 'seal',
      prev: prevBody ? prevBody.hash : null,
      fromMs: prevBody ? prevBody.toMs : s.sealMs,
      toMs: s.sealMs,
    });
    const note = signCheckpoint(body, [signer]);
    const trailer = encodeTrailer(
      { count: entries.length, chainLast: chain, endFrontier: frontier, checkpoint: new TextEncoder().encode(note) },
      header.length + frames.length,
    );
    const file = new Uint8Array(header.length + frames.length + trailer.length);
    file.set(header, 0);
    file.set(frames, header.length);
    file.set(trailer, header.length + frames.length);
    files.push(file);
    expected.push({
      name: segmentFileName(s.seq),
      seq: s.seq,
      firstIndex: startFrontier.size,
      entriesHex: entries.map(toHex),
      headerLength: header.length,
      startFrontierHex: toHex(startFrontier.toBytes()),
      chainPrevHex: toHex(chainPrev),
      leafHashesHex: leaves,
      chainHex: chains,
      trailerOffset: header.length + frames.length,
      endFrontierHex: toHex(frontier.toBytes()),
      rootHex: toHex(frontier.root()),
      checkpointNote: note,
      checkpointBodyHashHex: toHex(checkpointBodyHash(body)),
      fileSha256Hex: toHex(sha256(file)),
      fileBytes: file.length,
    });
    prevBody = { hash: checkpointBodyHash(body), toMs: s.sealMs };
  }
  return { files, expected: { input: INPUT, verifierKey: signer.verifierKey, segments: expected } };
}

describe('segment test vectors (test/vectors/segment-v1)', () => {
  const built = build();
  if (process.env.SEALTRAIL_WRITE_VECTORS === '1') {
    fs.mkdirSync(VDIR, { recursive: true });
    built.files.forEach((f, i) => fs.writeFileSync(path.join(VDIR, segmentFileName(i)), f));
    fs.writeFileSync(path.join(VDIR, 'expected.json'), JSON.stringify(built.expected, null, 2) + '\n');
  }
  const expected = JSON.parse(fs.readFileSync(path.join(VDIR, 'expected.json'), 'utf8')) as ReturnType<typeof build>['expected'];

  it('rebuilds both segment files byte for byte from the inputs', () => {
    expect(built.expected).toEqual(expected);
    built.files.forEach((f, i) => {
      expect(Buffer.from(f).equals(fs.readFileSync(path.join(VDIR, segmentFileName(i)))), segmentFileName(i)).toBe(true);
    });
  });

  it('parses the files back to the expected values; each seal verifies; segment 1 starts where segment 0 ends', () => {
    const verifier = verifierFor(signerFromSeed(ORIGIN, SEED));
    let prevRoot: string | undefined;
    for (const e of expected.segments) {
      const file = new Uint8Array(fs.readFileSync(path.join(VDIR, e.name as string)));
      const items = parseSegment(file);
      const h = items[0]!;
      expect(h.kind).toBe('header');
      if (h.kind !== 'header') return;
      expect(h.header.seq).toBe(e.seq);
      expect(h.header.origin).toBe(ORIGIN);
      expect(toHex(h.header.chainPrev)).toBe(e.chainPrevHex);
      if (prevRoot) expect(toHex(h.header.frontier.root())).toBe(prevRoot);
      const frames = items.filter((i) => i.kind === 'frame');
      expect(frames.map((f) => (f.kind === 'frame' ? toHex(f.entry) : ''))).toEqual(e.entriesHex);
      expect(frames.map((f) => (f.kind === 'frame' ? toHex(f.leaf) : ''))).toEqual(e.leafHashesHex);
      expect(frames.map((f) => (f.kind === 'frame' ? toHex(leafHash(f.entry)) : ''))).toEqual(e.leafHashesHex);
      const f = h.header.frontier.clone();
      for (const fr of frames) if (fr.kind === 'frame') f.append(fr.leaf);
      expect(toHex(f.root())).toBe(e.rootHex);
      const t = items.at(-1)!;
      expect(t.kind).toBe('trailer');
      if (t.kind !== 'trailer') return;
      expect(readFooter(file)).toBe(e.trailerOffset);
      const v = verifyCheckpoint(t.trailer.checkpoint, [verifier], ORIGIN);
      expect(v.ok).toBe(true);
      if (v.ok) expect(toHex(v.checkpoint.root)).toBe(e.rootHex);
      prevRoot = e.rootHex as string;
    }
  });

  it('the streaming parser gives the same items for every chunk size 1..64', () => {
    const file = new Uint8Array(fs.readFileSync(path.join(VDIR, segmentFileName(1))));
    const whole = parseSegment(file).map((i) => (i.kind === 'frame' ? toHex(i.entry) + toHex(i.chain) : i.kind + i.offset));
    for (let chunk = 1; chunk <= 64; chunk++) {
      const p = new SegmentParser();
      const got: string[] = [];
      for (let o = 0; o < file.length; o += chunk) {
        for (const i of p.push(file.slice(o, o + chunk))) got.push(i.kind === 'frame' ? toHex(i.entry) + toHex(i.chain) : i.kind + i.offset);
      }
      p.end();
      expect(got, `chunk ${chunk}`).toEqual(whole);
    }
  });
});

describe('segment parser errors name the check, offset, frame and index', () => {
  const file = new Uint8Array(fs.readFileSync(path.join(VDIR, segmentFileName(1))));
  const fail = (bytes: Uint8Array): SegmentFormatError => {
    try {
      parseSegment(bytes);
    } catch (e) {
      if (e instanceof SegmentFormatError) return e;
      throw e;
    }
    throw new Error('expected a SegmentFormatError');
  };
  const exp = JSON.parse(fs.readFileSync(path.join(VDIR, 'expected.json'), 'utf8')) as { segments: { headerLength: number; firstIndex: number; trailerOffset: number }[] };
  const h = exp.segments[1]!.headerLength;

  it('unknown version is FORMAT_UNSUPPORTED, not corruption', () => {
    const b = file.slice();
    b[9] = 2;
    const e = fail(b);
    expect(e.code).toBe('FORMAT_UNSUPPORTED');
    expect(e.check).toBe('header_version');
  });

  it('bad magic, header CRC', () => {
    const b = file.slice();
    b[0] = 0x88;
    expect(fail(b).check).toBe('header_magic');
    const c = file.slice();
    c[30] = c[30]! ^ 1;
    expect(fail(c).check).toBe('header_crc');
  });

  it('frame length, CRC and chain, with the frame number and global index', () => {
    const b = file.slice();
    b[h + 2] = b[h + 2]! ^ 1; // len of frame 0
    expect(fail(b)).toMatchObject({ check: 'frame_length', offset: h, frame: 0, index: 3 });
    const c = file.slice();
    c[h + 50] = c[h + 50]! ^ 1; // entry byte of frame 0
    expect(fail(c)).toMatchObject({ check: 'frame_crc', offset: h, frame: 0, index: 3 });
  });

  it('truncation and trailing bytes', () => {
    expect(fail(file.subarray(0, file.length - 1)).check).toBe('truncated');
    expect(fail(file.subarray(0, h + 10))).toMatchObject({ check: 'frame_truncated', frame: 0, index: 3 });
    const longer = new Uint8Array(file.length + 1);
    longer.set(file);
    expect(fail(longer).check).toBe('trailing_bytes');
  });

  it('trailer and footer damage', () => {
    const t = exp.segments[1]!.trailerOffset;
    const b = file.slice();
    b[t + 60] = b[t + 60]! ^ 1;
    expect(fail(b).check).toBe('trailer_crc');
    const c = file.slice();
    c[c.length - 16] = c[c.length - 16]! ^ 1;
    expect(fail(c).check).toBe('footer');
  });
});

/** `sealtrail inspect FILE [--json]` on our segment vectors, a damaged copy, an open segment, and bad usage. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/commands/inspect.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { scanSegment } from '../../src/ledger/recovery.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { directIoIn, entry, ledgerConfig, removeDir, tempDir, testSigner } from './helpers.js';
import { waitUntil } from '../security/helpers.js';

const VEC = path.resolve(import.meta.dirname, '../vectors/segment-v1/0000000000000000.seg');
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await removeDir(d);
});

async function inspect(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await run(argv, { stdout, stderr, env: {}, cwd: process.cwd() });
  return { code, out, err };
}

describe('sealtrail inspect', () => {
  it('prints header, entries as OTLP JSON and the checkpoint (--json)', async () => {
    const r = await inspect(VEC, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.header).toMatchObject({ seq: 0, origin: 'sealtrail.test/vector', firstIndex: 0 });
    expect(j.entries).toHaveLength(3);
    expect(JSON.stringify(j.entries[0].otlp)).toContain('user alice logged in');
    expect(j.sealed).toBe(true);
    expect(j.trailer.checkpoint).toMatchObject({ kind: 'seal', size: 3, seq: 0, prev: 'genesis', rootMatchesEntries: true });
    expect(j.finding).toBeNull();
  });

  it('human output', async () => {
    const r = await inspect(VEC);
    expect(r.code).toBe(0);
    expect(r.out).toContain('seq 0, origin sealtrail.test/vector');
    expect(r.out).toContain('#2 @');
    expect(r.out).toContain('user bob denied');
    expect(r.out).toMatch(/kind seal, segment 0, tree size 3; root matches the entries/);
  });

  it('a damaged segment: what could be read, then the finding; exit 1', async () => {
    const d = await tempDir();
    dirs.push(d);
    const b = fs.readFileSync(VEC);
    b[230] = b[230]! ^ 0x01; // frame 1 (header 134 B, frame 0 is 72 B)
    const f = path.join(d, '0000000000000000.seg');
    fs.writeFileSync(f, b);
    const r = await inspect(f, '--json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(j.finding).toMatchObject({ check: 'frame_crc', frame: 1, index: 1 });
    expect(j.entries).toHaveLength(1);
  });

  it('an open segment is reported as unsealed, exit 0', async () => {
    const d = await tempDir();
    dirs.push(d);
    const l = await Ledger.open({ config: ledgerConfig(d), signer: testSigner(), logger: silentLogger() });
    await l.append([entry('open-1'), entry('open-2')]);
    const r = await inspect(path.join(d, 'segments', '0000000000000000.seg.open'));
    await l.close();
    expect(r.code).toBe(0);
    expect(r.out).toContain('unsealed (open segment): 2 entries so far');
  });

  it('an open segment that ends in zeros written ahead of the commits: unsealed, the zeros named, exit 0', async () => {
    const d = await tempDir();
    dirs.push(d);
    const l = await Ledger.open({ config: ledgerConfig(d), signer: testSigner(), logger: silentLogger() });
    const open = path.join(d, 'segments', '0000000000000000.seg.open');
    try {
      expect((await l.append([entry('open-1', 3000), entry('open-2', 3000)])).kind).toBe('ok');
      const end = scanSegment(new Uint8Array(fs.readFileSync(open)), { sealed: false }).goodEnd;
      if (!directIoIn(d)) return; // written reason: this file system refuses O_DIRECT, so no zeros are written ahead
      expect(await waitUntil(() => fs.statSync(open).size > end, 2000)).toBe(true);
      const r = await inspect(open);
      expect(r.code).toBe(0);
      expect(r.out).toContain('unsealed (open segment): 2 entries so far');
      expect(r.out).toContain(`zeros from offset ${end} (space written ahead of the commits`);
      const j = JSON.parse((await inspect(open, '--json')).out);
      expect(j).toMatchObject({ sealed: false, finding: null, zeroFillOffset: end });
      // The same zeros anywhere but at the end of an open segment are damage.
      const sealedCopy = path.join(d, '0000000000000009.seg');
      fs.copyFileSync(open, sealedCopy);
      const s = await inspect(sealedCopy, '--json');
      expect(s.code).toBe(1);
      expect(JSON.parse(s.out).finding).toMatchObject({ check: 'zero_fill', offset: end });
    } finally {
      await l.close();
    }
  });

  it('usage and I/O errors exit 2', async () => {
    expect((await inspect()).code).toBe(2);
    expect((await inspect('--bogus', VEC)).code).toBe(2);
    const r = await inspect('/nonexistent/x.seg');
    expect(r.code).toBe(2);
    expect(r.err).toContain('cannot read');
  });
});

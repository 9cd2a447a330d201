/**
 * The log verifier (DESIGN.md G3): walks one or more sources segment by segment, in sequence order,
 * and reports every finding (findings.ts) instead of stopping at the first. Pure and offline: it
 * gets bytes from a {@link LogSource} and trusted keys and the origin from the operator — never
 * from the data being verified (immudb CVE-2022-39199).
 *
 * Memory stays flat in the size of the log: segments are streamed through fixed buffers and
 * scanned in place (frame-scan.ts; pool.ts bounds the read-ahead per worker), and per checkpoint
 * only its tree size and root are kept (for equivocation checks).
 *
 * Order of trust (docs/verify.md "Key rotation"): checkpoints are processed in chain order
 * (segment sequence, then tree size, then time — the order of their file names). A checkpoint
 * signed by a trusted key that announces `sealtrail-key K` makes K trusted from the next
 * checkpoint on; nothing else can add a key.
 */
import { createHash } from 'node:crypto';
import { type Checkpoint, verifyCheckpoint } from '../ledger/checkpoint.js';
import { EMPTY_ROOT, chainSeed, hashEqual, toHex } from '../ledger/hash.js';
import { parseSegmentFileName, segmentFileName } from '../ledger/segment-format.js';
import { type Verifier, parseVerifierKey } from '../keys/keys.js';
import { SealtrailError, errorMessage } from '../errors.js';
import { type CheckName, type Finding, type SourceSummary, type VerifyReport, emptySummary } from './findings.js';
import { DigestOnlyScan, SegmentScanner } from './frame-scan.js';
import { CHUNK_BYTES, ScanPool } from './pool.js';
import { type SegmentScan, scanSegment } from './scan.js';
import { type LogSource, type ObjectReader, type StoredItem, chunkReader, parseCheckpointFileName } from './source.js';

/** Options of one verification run (all from the operator). */
export interface VerifyOptions {
  readonly origin: string;
  readonly trusted: readonly Verifier[];
  /** Latest checkpoint must be at most this old (ms), or a `log.fresh` finding. */
  readonly expectFreshMs?: number | null;
  /** Only segments whose time range overlaps [since, until] have their entries hashed. */
  readonly since?: number | null;
  readonly until?: number | null;
  /** Clock for --expect-fresh (tests inject one). */
  readonly now?: () => number;
  /** Called now and then with a one-line progress message (the CLI prints it on stderr). */
  readonly onProgress?: (line: string) => void;
  /** Called for every entry of every segment whose entries were verified (used by `export`). */
  readonly onEntry?: (index: number, entry: Uint8Array, source: string) => void | Promise<void>;
  /**
   * Worker threads for scanning segments (pool.ts); default: one per available core, none on a
   * single core. 0 = scan on the main thread. Ignored with `onEntry` (entries are delivered in
   * order from the main thread).
   */
  readonly workers?: number;
}

/** What the verifier remembers of one validly parsed checkpoint. */
interface CpState {
  readonly bodyHash: Uint8Array;
  readonly size: number;
  readonly root: Uint8Array;
  readonly seq: number;
  readonly kind: 'seal' | 'heartbeat';
  readonly toMs: number;
  readonly where: string;
  readonly trusted: boolean;
}

/** Per-source result used for comparing sources. */
interface SourceResult {
  readonly summary: SourceSummary;
  /** name → SHA-256 of the object bytes (segments and checkpoints), for byte equality. */
  readonly digests: Map<string, string>;
  readonly segmentSeqs: number[];
  latestSize: number | null;
}

/** Equivocation registry across all sources: tree size → the first validly signed root seen. */
type RootRegistry = Map<number, { root: Uint8Array; where: string }>;

/**
 * Scans of segments already verified in an earlier source, by name: a byte-identical copy (same
 * SHA-256) in a later source yields the same scan, so it is not hashed entry by entry again —
 * provided the roots it needs (its heartbeat sizes) were probed the first time.
 */
type ScanCache = Map<string, { digest: string; scan: SegmentScan; probe: ReadonlySet<number> }>;

const ZERO32 = new Uint8Array(32);

/**
 * Verifies every source and compares them.
 * @throws SealtrailError IO when a source cannot be read, FORMAT_UNSUPPORTED for a format version
 *   this build does not know (both mean "could not verify", exit 2 — never "tampered")
 */
export async function verifyLog(sources: readonly LogSource[], opts: VerifyOptions): Promise<VerifyReport> {
  const t0 = performance.now();
  const findings: Finding[] = [];
  const report: VerifyReport = {
    origin: opts.origin,
    trustedKeys: opts.trusted.map((k) => k.text),
    sources: [],
    findings,
    rotatedKeys: [],
    elapsedMs: 0,
    options: { expectFreshMs: opts.expectFreshMs ?? null, since: opts.since ?? null, until: opts.until ?? null },
  };
  const roots: RootRegistry = new Map();
  const results: SourceResult[] = [];
  const pool = opts.onEntry ? null : ScanPool.create(opts.workers);
  const cache: ScanCache | null = sources.length > 1 && !opts.onEntry ? new Map() : null;
  try {
    for (const src of sources) {
      const v = new SourceVerifier(src, opts, roots, findings, report.rotatedKeys, sources.length > 1, pool, cache);
      results.push(await v.run());
      report.sources.push(v.summary);
    }
  } finally {
    await pool?.close();
  }
  if (sources.length > 1) compareSources(results, findings);
  report.elapsedMs = performance.now() - t0;
  return report;
}

/** Multi-source checks: byte equality of same-named objects, missing objects, a source behind. */
function compareSources(results: readonly SourceResult[], findings: Finding[]): void {
  const firstHolder = new Map<string, { digest: string; source: string }>();
  for (const r of results) {
    for (const [name, digest] of r.digests) {
      const seen = firstHolder.get(name);
      if (!seen) firstHolder.set(name, { digest, source: r.summary.source });
      else if (seen.digest !== digest) {
        findings.push({
          check: 'source.mismatch',
          source: r.summary.source,
          segment: parseSegmentFileName(name) ?? parseCheckpointFileName(name)?.seq ?? null,
          file: name,
          message: `${name} differs from the copy in ${seen.source} (SHA-256 ${digest.slice(0, 16)}… vs ${seen.digest.slice(0, 16)}…)`,
        });
      }
    }
  }
  const maxSize = Math.max(...results.map((r) => r.latestSize ?? -1));
  const allSeqs = new Set(results.flatMap((r) => r.segmentSeqs));
  for (const r of results) {
    const have = new Set(r.segmentSeqs);
    const myMax = r.segmentSeqs.length ? Math.max(...r.segmentSeqs) : -1;
    const missing = [...allSeqs].filter((s) => !have.has(s) && s < myMax).sort((a, b) => a - b);
    for (const s of missing) {
      const holder = results.find((o) => o.segmentSeqs.includes(s))!;
      findings.push({
        check: 'source.missing',
        source: r.summary.source,
        segment: s,
        message: `segment ${s} is held by ${holder.summary.source} but missing here`,
      });
    }
    const size = r.latestSize ?? -1;
    if (size < maxSize) {
      const ahead = results.find((o) => (o.latestSize ?? -1) === maxSize)!;
      findings.push({
        check: 'source.truncated',
        source: r.summary.source,
        segment: myMax >= 0 ? myMax : null,
        message:
          `latest signed checkpoint covers ${size < 0 ? 'nothing' : `${size} entries`}, but ${ahead.summary.source} has one covering ${maxSize}` +
          ' (tail missing or not yet forwarded)',
      });
    }
  }
}

/** Verifies one source; findings go to the shared list. */
class SourceVerifier {
  readonly summary: SourceSummary;
  readonly #src: LogSource;
  readonly #opts: VerifyOptions;
  readonly #roots: RootRegistry;
  readonly #findings: Finding[];
  readonly #rotated: string[];
  readonly #wantDigests: boolean;
  readonly #digests = new Map<string, string>();
  /** Keys trusted now: the operator's, plus keys announced by checkpoints signed by trusted keys. */
  #trusted: Verifier[];
  /** The last checkpoint in chain order (validly parsed; trusted or not). */
  #last: CpState | null = null;
  /** Checkpoints by body hash, kept for the current and previous segment only (flat memory). */
  #recent = new Map<string, CpState>();
  #prevRecent = new Map<string, CpState>();
  /** Seal checkpoints by segment seq (one small record per segment). */
  #seals = new Map<number, CpState>();
  /** What the next segment must continue from; null = unknown (after a gap or a failed segment). */
  #nextIndex: number | null = null;
  #nextChain: Uint8Array | null = null;
  #latest: CpState | null = null;
  #lastProgress = performance.now();
  readonly #pool: ScanPool | null;
  readonly #cache: ScanCache | null;
  /** A ledger directory whose forwarder released checkpoint files: the chain may start later. */
  #checkpointsReleased = false;
  /** Largest index + 1 of the entries scanned. */
  #maxEnd = 0;
  /** Scans started ahead of the main loop (pool mode), by segment seq. */
  readonly #ahead = new Map<number, Promise<SegmentScan>>();
  /** The one read buffer of main-thread scans (no pool), reused for every chunk of every segment. */
  #buf: Uint8Array | undefined;

  constructor(
    src: LogSource,
    opts: VerifyOptions,
    roots: RootRegistry,
    findings: Finding[],
    rotated: string[],
    compare: boolean,
    pool: ScanPool | null = null,
    cache: ScanCache | null = null,
  ) {
    this.#pool = pool;
    this.#cache = cache;
    this.#src = src;
    this.#opts = opts;
    this.#roots = roots;
    this.#findings = findings;
    this.#rotated = rotated;
    this.#wantDigests = compare;
    this.#trusted = [...opts.trusted];
    this.summary = emptySummary(src.description);
  }

  #find(check: CheckName, segment: number | null, message: string, extra: { file?: string; index?: number; offset?: number } = {}): void {
    this.#findings.push({ check, source: this.#src.description, segment, ...extra, message });
  }

  async run(): Promise<SourceResult> {
    const items = await this.#src.list();
    const released = await this.#src.released();
    this.#checkpointsReleased = [...released].some((n) => n.endsWith('.cp'));
    const segs = new Map<number, StoredItem>();
    const cps = new Map<number, { item: StoredItem; name: NonNullable<ReturnType<typeof parseCheckpointFileName>> }[]>();
    let open: StoredItem | undefined;
    const seenVersions = new Set<string>();
    for (const it of items) {
      if (it.deleteMarker || it.versions > 1) {
        if (!seenVersions.has(it.key)) {
          seenVersions.add(it.key);
          this.#find(
            'segment.versions',
            parseSegmentFileName(it.name) ?? parseCheckpointFileName(it.name)?.seq ?? null,
            it.deleteMarker
              ? `${it.key} has a delete marker: a write-once object was deleted or hidden`
              : `${it.key} has ${it.versions} versions: a write-once object was overwritten (the oldest version is verified)`,
            { file: it.name },
          );
        }
      }
      if (it.deleteMarker || it.versionIndex !== 0) continue;
      if (it.kind === 'unknown') {
        this.#find('source.unexpected', null, `${it.key} is neither a segment nor a checkpoint of this log`, { file: it.name });
        continue;
      }
      if (it.kind === 'open-segment') {
        open = it;
        continue;
      }
      if (it.kind === 'segment') {
        const seq = parseSegmentFileName(it.name);
        if (seq === undefined) {
          this.#find('segment.name', null, `${it.key}: not a segment file name (expected 16 digits + .seg)`, { file: it.name });
          continue;
        }
        segs.set(seq, it);
        continue;
      }
      const cn = parseCheckpointFileName(it.name);
      if (!cn) {
        this.#find('checkpoint.name', null, `${it.key}: not a checkpoint file name (expected SEQ-SIZE-TIME-KIND.cp)`, { file: it.name });
        continue;
      }
      const list = cps.get(cn.seq) ?? [];
      list.push({ item: it, name: cn });
      cps.set(cn.seq, list);
    }
    for (const list of cps.values()) list.sort((a, b) => (a.item.name < b.item.name ? -1 : a.item.name > b.item.name ? 1 : 0));

    const segSeqs = [...segs.keys()].sort((a, b) => a - b);
    const cpSeqs = [...cps.keys()];
    const openSeq = open ? parseSegmentFileName(open.name.replace(/\.open$/, '')) : undefined;
    const allSeqs = [...new Set([...segSeqs, ...cpSeqs, ...(openSeq !== undefined ? [openSeq] : [])])].sort((a, b) => a - b);
    if (allSeqs.length === 0) {
      this.#find('log.empty', null, `no segment and no checkpoint of origin ${this.#opts.origin} found here`);
      this.#freshness();
      return this.#result(segSeqs);
    }

    let started = false;
    // Pool mode: keep scans of the next segments running in workers while this loop checks
    // checkpoints in order. Probe sizes come from the checkpoint file names (a name that lies is
    // a checkpoint.name finding; its heartbeat then only loses its root comparison).
    const scanOrder = allSeqs.filter((q) => segs.has(q) || (openSeq === q && open !== undefined));
    let nextAhead = 0;
    const fillAhead = (): void => {
      const pool = this.#pool;
      if (!pool) return;
      // Queued jobs hold no buffer and no open file (pool.ts), so two per worker keep every
      // worker busy while the main loop waits for the oldest.
      while (nextAhead < scanOrder.length && this.#ahead.size < 2 * pool.size) {
        const q = scanOrder[nextAhead++]!;
        const item = segs.get(q) ?? open!;
        const names = cps.get(q) ?? [];
        if (this.#skipByName(names, cps.get(q - 1) ?? [])) continue;
        const probe = names.map((c) => c.name.size);
        const p = this.#scanItem(item, probe);
        p.catch(() => undefined); // awaited later; keep an early failure from being "unhandled"
        this.#ahead.set(q, p);
      }
    };
    for (let i = 0; i < allSeqs.length; i++) {
      const seq = allSeqs[i]!;
      fillAhead();
      const prevSeq = i > 0 ? allSeqs[i - 1]! : -1;
      // Head and gaps (by what is stored, before looking inside).
      if (!started) {
        started = true;
        const missingHead = range(0, seq);
        if (seq > 0 && !missingHead.every((s) => released.has(segName(s)))) {
          this.#find('segment.start', seq, `the log starts at segment ${seq}: segments 0..${seq - 1} are missing (head deleted)`);
        }
      } else if (seq > prevSeq + 1) {
        const gap = range(prevSeq + 1, seq);
        if (gap.every((s) => released.has(segName(s)))) this.#resetContinuity();
        else this.#find('segment.sequence', prevSeq + 1, `segments ${fmtRange(prevSeq + 1, seq - 1)} are missing between ${prevSeq} and ${seq}`);
      }
      this.#rotateRecent();
      const cpList = cps.get(seq) ?? [];
      // Heartbeats first (their sizes lie inside the segment), then the seal file.
      const probeSizes = new Set<number>();
      const heartbeats: CpState[] = [];
      let sealFromFile: { state: CpState | null; bytes: Uint8Array; item: StoredItem } | undefined;
      for (const { item, name } of cpList) {
        const bytes = await this.#readAll(item);
        const st = this.#checkpoint(bytes, seq, item, name);
        if (name.kind === 'heartbeat') {
          this.summary.heartbeats++;
          if (st) {
            heartbeats.push(st);
            probeSizes.add(st.size);
          }
        } else {
          if (sealFromFile) {
            this.#find('checkpoint.equivocation', seq, `two seal checkpoints for segment ${seq}: ${sealFromFile.item.name} and ${item.name}`, { file: item.name });
          }
          sealFromFile = { state: st, bytes, item };
          if (st) probeSizes.add(st.size);
        }
      }
      const segItem = segs.get(seq);
      const isOpen = segItem === undefined && openSeq === seq && open !== undefined;
      const item = segItem ?? (isOpen ? open : undefined);
      if (item === undefined) {
        // Only checkpoints for this seq. A seal file without its segment: the segment is gone.
        if (sealFromFile && !released.has(segName(seq))) {
          this.#find(
            'segment.sequence',
            seq,
            `a seal checkpoint for segment ${seq} exists (${sealFromFile.item.name}) but the segment is missing`,
            { file: sealFromFile.item.name },
          );
        }
        // Heartbeats of a segment that is not stored: normal for the open segment (the last seq
        // here); before a later segment or checkpoint, that segment was deleted.
        else if (cpList.length > 0 && i < allSeqs.length - 1 && !released.has(segName(seq))) {
          this.#find('segment.sequence', seq, `checkpoints of segment ${seq} exist (${cpList[0]!.item.name}) but the segment is missing`, { file: cpList[0]!.item.name });
        }
        if (sealFromFile?.state) this.#afterSeal(sealFromFile.state, null);
        else if (heartbeats.length) this.#resetContinuity();
        continue;
      }
      if (this.#skipByTime(sealFromFile?.state ?? null, seq)) {
        this.#ahead.delete(seq);
        this.summary.skippedSegments++;
        this.summary.segments++;
        this.#noteSegmentSeq(seq);
        if (sealFromFile?.state) this.#afterSeal(sealFromFile.state, null);
        else this.#resetContinuity();
        continue;
      }
      await this.#segment(item, seq, isOpen, probeSizes, heartbeats, sealFromFile);
      this.#progress(seq);
    }
    this.#freshness();
    return this.#result(segSeqs);
  }

  #result(segSeqs: number[]): SourceResult {
    if (this.#maxEnd > 0 && this.summary.treeSize !== null && this.#maxEnd > this.summary.treeSize) {
      this.summary.unsignedEntries = this.#maxEnd - this.summary.treeSize;
    }
    return { summary: this.summary, digests: this.#digests, segmentSeqs: segSeqs, latestSize: this.#latest?.size ?? null };
  }

  #progress(seq: number): void {
    const now = performance.now();
    if (this.#opts.onProgress && now - this.#lastProgress > 2000) {
      this.#lastProgress = now;
      this.#opts.onProgress(`${this.#src.description}: segment ${seq}, ${this.summary.entries} entries, ${(this.summary.bytes / 1048576).toFixed(0)} MiB`);
    }
  }

  #noteSegmentSeq(seq: number): void {
    if (this.summary.firstSegment === null || seq < this.summary.firstSegment) this.summary.firstSegment = seq;
    if (this.summary.lastSegment === null || seq > this.summary.lastSegment) this.summary.lastSegment = seq;
  }

  #rotateRecent(): void {
    this.#prevRecent = this.#recent;
    this.#recent = new Map();
  }

  #resetContinuity(): void {
    this.#nextIndex = null;
    this.#nextChain = null;
  }

  /** --since/--until: skip hashing a segment entirely outside the window (its seal is still checked). */
  #skipByTime(seal: CpState | null, seq: number): boolean {
    const { since, until } = this.#opts;
    if ((since === null || since === undefined) && (until === null || until === undefined)) return false;
    if (!seal) return false;
    const prevSeal = this.#seals.get(seq - 1);
    const from = prevSeal ? prevSeal.toMs : 0;
    if (since !== null && since !== undefined && seal.toMs < since) return true;
    if (until !== null && until !== undefined && from > until) return true;
    return false;
  }

  /**
   * Scans one object, streamed (pool.ts / frame-scan.ts), or reuses the scan of a byte-identical
   * copy verified in an earlier source (ScanCache): when the cache holds a scan of the same name
   * that probed every size needed here, the object is first only hashed, and scanned only if its
   * SHA-256 differs. With several sources the result carries the object's SHA-256 in `digest`.
   */
  async #scanItem(item: StoredItem, probe: Iterable<number>): Promise<SegmentScan> {
    const want = new Set(probe);
    const digest = this.#wantDigests || this.#cache !== null;
    const hit = this.#cache?.get(item.name);
    if (hit && [...want].every((x) => hit.probe.has(x))) {
      const d = await this.#stream(item, [], true, false);
      if (d.digest && Buffer.from(d.digest).toString('hex') === hit.digest) {
        this.summary.identicalToVerified++;
        return { ...hit.scan, digest: d.digest };
      }
    }
    const scan = await this.#stream(item, want, digest, true);
    if (this.#cache && !hit && scan.digest) this.#cache.set(item.name, { digest: Buffer.from(scan.digest).toString('hex'), scan, probe: want });
    return scan;
  }

  /** Streams one object through a scan in a pool worker, or here through one reused buffer. */
  async #stream(item: StoredItem, probe: Iterable<number>, digest: boolean, parse: boolean): Promise<SegmentScan> {
    const src = this.#src;
    const open = (): Promise<ObjectReader> => (src.openReader ? src.openReader(item) : Promise.resolve(chunkReader(src.read(item))));
    if (this.#pool) return this.#pool.scan({ open, probe, digest, parse });
    const scanner = parse ? new SegmentScanner({ probeSizes: probe, digest }) : new DigestOnlyScan();
    const reader = await open();
    try {
      if (reader.view) {
        // Zero-copy (a memory-mapped sealed segment): the scanner reads the file's pages in place.
        for (let v = await reader.view(2 * CHUNK_BYTES); v; v = await reader.view(2 * CHUNK_BYTES)) scanner.push(v);
      } else {
        this.#buf ??= new Uint8Array(CHUNK_BYTES);
        for (;;) {
          const n = await reader.read(this.#buf);
          if (n > 0) scanner.push(this.#buf.subarray(0, n));
          if (n < this.#buf.length) break;
        }
      }
    } finally {
      await reader.close();
    }
    return scanner.end();
  }

  /** --since/--until from checkpoint file names, to avoid scanning ahead what will be skipped. */
  #skipByName(names: readonly { name: { kind: string; toMs: number } }[], prev: readonly { name: { kind: string; toMs: number } }[]): boolean {
    const { since, until } = this.#opts;
    if ((since === null || since === undefined) && (until === null || until === undefined)) return false;
    const seal = names.find((c) => c.name.kind === 'seal');
    if (!seal) return false;
    const prevSeal = prev.find((c) => c.name.kind === 'seal');
    if (since !== null && since !== undefined && seal.name.toMs < since) return true;
    if (until !== null && until !== undefined && prevSeal && prevSeal.name.toMs > until) return true;
    return false;
  }

  async #readAll(item: StoredItem): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const c of this.#src.read(item)) {
      parts.push(c);
      n += c.length;
    }
    const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
    if (this.#wantDigests) this.#digests.set(item.name, sha256Hex(out));
    return out;
  }

  /**
   * Checks one checkpoint in chain order: syntax, format version, origin, signature by a trusted
   * key, link to the previous checkpoint, order, equivocation, file name; applies key rotation.
   * Returns its state when it parsed (even if untrusted, so that one bad signature does not make
   * every later link fail), or null when it could not be read at all.
   */
  #checkpoint(
    bytes: Uint8Array,
    seq: number,
    item: StoredItem | null,
    name: ReturnType<typeof parseCheckpointFileName> | null,
    inChain = true,
  ): CpState | null {
    const where = item ? item.name : `trailer of segment ${seq}`;
    const file = item ? { file: item.name } : {};
    const v = verifyCheckpoint(bytes, this.#trusted, this.#opts.origin);
    let cp: Checkpoint | undefined;
    let trusted = false;
    if (v.ok) {
      cp = v.checkpoint;
      trusted = true;
    } else {
      cp = v.checkpoint;
      switch (v.reason) {
        case 'unknown_version': {
          const ver = /\nsealtrail-format (\d+)\n/.exec(Buffer.from(bytes).toString('latin1'))?.[1];
          // Version 0 was never issued: a lower version than the oldest one is a downgrade, i.e.
          // tampering. A higher one that is validly signed needs a newer verifier (exit 2).
          if (ver !== undefined && Number(ver) >= 1 && v.signatureVerified === true) {
            throw new SealtrailError(
              'FORMAT_UNSUPPORTED',
              `${this.#src.description}: ${where} uses checkpoint format version ${ver}, which this build cannot read; upgrade sealtrail`,
            );
          }
          this.#find(
            'checkpoint.parse',
            seq,
            ver !== undefined && Number(ver) < 1
              ? `${where}: checkpoint format version ${ver} was never issued (format downgrade): ${v.detail}`
              : `${where}: unknown checkpoint format version without a valid signature: ${v.detail}`,
            file,
          );
          return null;
        }
        case 'bad_format':
          this.#find('checkpoint.parse', seq, `${where}: not a valid signed checkpoint: ${v.detail}`, file);
          if (!cp) return null;
          break;
        case 'wrong_origin':
          this.#find('checkpoint.origin', seq, `${where}: ${v.detail} (expected origin ${JSON.stringify(this.#opts.origin)})`, file);
          return null;
        default:
          this.#find('checkpoint.signature', seq, `${where}: no valid signature by a trusted key (${v.reason}: ${v.detail})`, file);
          if (!cp) return null;
      }
    }
    this.summary.checkpoints++;
    const st: CpState = {
      bodyHash: cp.bodyHash,
      size: cp.size,
      root: cp.root,
      seq: cp.seq,
      kind: cp.kind,
      toMs: cp.toMs,
      where,
      trusted,
    };
    if (name && (name.seq !== cp.seq || name.size !== cp.size || name.toMs !== cp.toMs || name.kind !== cp.kind)) {
      this.#find(
        'checkpoint.name',
        seq,
        `${where} is stored under a name that does not match its signed content (segment ${cp.seq}, size ${cp.size}, time ${cp.toMs}, ${cp.kind}): replayed or relocated`,
        file,
      );
    } else if (!name && cp.seq !== seq) {
      this.#find('segment.sequence', seq, `${where}: the seal checkpoint names segment ${cp.seq}`, file);
    }
    if (inChain) this.#chainStep(st, cp, seq, file);
    if (trusted) {
      // Equivocation: one tree size, one root (RFC 9162 §2.1: the tree of a size is unique).
      const prior = this.#roots.get(cp.size);
      if (prior && !hashEqual(prior.root, cp.root)) {
        this.#find(
          'checkpoint.equivocation',
          seq,
          `${where} and ${prior.where} are both validly signed for tree size ${cp.size} but have different roots (${b64(cp.root)} vs ${b64(prior.root)})`,
          file,
        );
      } else if (!prior) this.#roots.set(cp.size, { root: cp.root, where: `${this.#src.description}:${where}` });
      if (!this.#latest || cp.size > this.#latest.size || (cp.size === this.#latest.size && cp.toMs > this.#latest.toMs)) this.#latest = st;
      if (this.summary.timeFrom === null || cp.fromMs < this.summary.timeFrom) this.summary.timeFrom = cp.fromMs;
      if (this.summary.timeTo === null || cp.toMs > this.summary.timeTo) this.summary.timeTo = cp.toMs;
      this.summary.treeSize = this.#latest.size;
      this.summary.latestRoot = b64(this.#latest.root);
      // Key rotation: this checkpoint was verified with the keys trusted before it, so a key it
      // announces is effective from the next checkpoint on (api-crypto.md, docs/verify.md).
      for (const k of cp.keys) {
        try {
          const nk = parseVerifierKey(k);
          if (!this.#trusted.some((t) => t.text === nk.text)) {
            this.#trusted.push(nk);
            this.#rotated.push(nk.text);
          }
        } catch (e) {
          this.#find('key.rotation', seq, `${where} announces a key that does not parse: ${errorMessage(e)}`, file);
        }
      }
    } else if (cp.keys.length > 0) {
      this.#find('key.rotation', seq, `${where} announces ${cp.keys.length} key(s) but is not signed by a trusted key: ignored`, file);
    }
    this.#recent.set(toHex(st.bodyHash), st);
    return st;
  }

  /** Link and order against the previous checkpoint in chain order; then it becomes the last. */
  #chainStep(st: CpState, cp: Checkpoint, seq: number, file: { file?: string }): void {
    const last = this.#last;
    if (last) {
      if (cp.prev === null) {
        this.#find('checkpoint.link', seq, `${st.where} is a genesis checkpoint after ${last.where}: a restarted log passed off as the same log`, file);
      } else if (!hashEqual(cp.prev, last.bodyHash)) {
        this.#find('checkpoint.link', seq, `${st.where} does not link to the checkpoint before it (${last.where}): a checkpoint is missing, replaced or reordered`, file);
      }
      if (cp.size < last.size) this.#find('checkpoint.order', seq, `${st.where}: tree size ${cp.size} is smaller than ${last.size} in ${last.where}`, file);
      if (cp.toMs < last.toMs) this.#find('checkpoint.order', seq, `${st.where}: time ${cp.toMs} is before ${last.toMs} in ${last.where}`, file);
      if (cp.seq < last.seq) this.#find('checkpoint.order', seq, `${st.where}: segment ${cp.seq} after segment ${last.seq}`, file);
    } else if (cp.prev === null && (cp.size !== 0 && cp.seq !== 0)) {
      this.#find('checkpoint.link', seq, `${st.where} claims to be the first checkpoint of the log but covers ${cp.size} entries in segment ${cp.seq}`, file);
    } else if (cp.prev !== null && !this.#checkpointsReleased) {
      // The first checkpoint here is not the log's first (that one says genesis): the earlier ones
      // were deleted. Only a ledger directory may lack them, when the forwarder released them.
      this.#find('checkpoint.link', seq, `${st.where} follows a checkpoint that is not here: the log's earlier checkpoints are missing`, file);
    }
    this.#last = st;
  }

  /** After a segment (or its seal alone): remember the seal; set what the next segment continues from. */
  #afterSeal(seal: CpState, lastChain: Uint8Array | null): void {
    this.#seals.set(seal.seq, seal);
    this.#nextIndex = seal.size;
    this.#nextChain = lastChain;
  }

  async #segment(
    item: StoredItem,
    seq: number,
    isOpen: boolean,
    probeSizes: Set<number>,
    heartbeats: CpState[],
    sealFile: { state: CpState | null; bytes: Uint8Array; item: StoredItem } | undefined,
  ): Promise<void> {
    const file = { file: item.name };
    let scan: SegmentScan;
    const ahead = this.#ahead.get(seq);
    if (ahead) {
      this.#ahead.delete(seq);
      scan = await ahead;
      if (scan.digest && !isOpen) this.#digests.set(item.name, Buffer.from(scan.digest).toString('hex'));
    } else if (!this.#opts.onEntry) {
      scan = await this.#scanItem(item, probeSizes);
      if (scan.digest && !isOpen) this.#digests.set(item.name, Buffer.from(scan.digest).toString('hex'));
    } else {
      // `export`: every entry goes to onEntry in order, so the segment runs through SegmentParser.
      const hasher = this.#wantDigests ? new DigestTap() : undefined;
      const onEntry = this.#opts.onEntry;
      const chunks = hasher ? hasher.tap(this.#src.read(item)) : this.#src.read(item);
      scan = await scanSegment(chunks, { probeSizes, ...(onEntry ? { onEntry: (i: number, e: Uint8Array) => onEntry(i, e, this.#src.description) } : {}) });
      if (hasher && !isOpen) this.#digests.set(item.name, hasher.hex());
    }
    this.summary.segments++;
    this.summary.bytes += scan.bytes;
    this.summary.entries += scan.frames;
    if (scan.header) this.#maxEnd = Math.max(this.#maxEnd, scan.header.firstIndex + scan.frames);
    this.#noteSegmentSeq(seq);
    if (scan.unsupportedVersion !== undefined) {
      if (scan.unsupportedVersion > 0) {
        throw new SealtrailError(
          'FORMAT_UNSUPPORTED',
          `${this.#src.description}: ${item.name} uses segment format version ${scan.unsupportedVersion}, which this build cannot read; upgrade sealtrail`,
        );
      }
      this.#find('segment.header', seq, `format version 0 was never issued: the header was altered (format downgrade)`, { ...file, offset: 8 });
      this.#resetContinuity();
      if (sealFile?.state) this.#afterSeal(sealFile.state, null);
      return;
    }
    const h = scan.header;
    if (h) {
      if (h.origin !== this.#opts.origin) this.#find('segment.origin', seq, `header names origin ${JSON.stringify(h.origin)}, expected ${JSON.stringify(this.#opts.origin)}`, file);
      if (h.seq !== seq) this.#find('segment.name', seq, `stored as ${item.name} but its header says segment ${h.seq}: renamed, relocated or replayed`, file);
      if (this.#nextIndex !== null && h.firstIndex !== this.#nextIndex) {
        this.#find('segment.index', seq, `first index ${h.firstIndex}, expected ${this.#nextIndex} (the previous checkpoint's tree size)`, { ...file, index: h.firstIndex });
      }
      const expectChain = h.firstIndex === 0 ? chainSeed(this.#opts.origin) : this.#nextChain;
      if (expectChain && !hashEqual(h.chainPrev, expectChain)) {
        this.#find('chain.link', seq, h.firstIndex === 0 ? 'chain does not start from this origin\'s chain seed' : 'start chain value differs from the previous segment\'s last chain value', { ...file, index: h.firstIndex });
      }
      this.#checkStart(h.frontier.root(), h.firstIndex, h.prevCheckpointHash, seq, file);
    }
    if (scan.error) {
      const e = scan.error;
      // The open segment ends where the writes so far end: cut short, or in zeros written ahead of them.
      const tail = isOpen && (e.check === 'truncated' || e.check === 'frame_truncated' || e.check === 'zero_fill');
      if (!tail) {
        this.#find(formatCheckName(e.check), seq, e.message, { ...file, ...(e.index !== undefined ? { index: e.index } : {}), offset: e.offset });
      }
    }
    // Heartbeats inside this segment: the root at their size must be what they signed.
    for (const hb of heartbeats) {
      const r = scan.rootsAt.get(hb.size);
      if (r) {
        if (!hashEqual(r, hb.root)) {
          this.#find('checkpoint.heartbeat', seq, `heartbeat ${hb.where} signs root ${b64(hb.root)} for size ${hb.size}, the entries give ${b64(r)}`, { file: hb.where });
        }
      } else if (h && !scan.error && (hb.size < h.firstIndex || hb.size > h.firstIndex + scan.frames)) {
        if (!isOpen || hb.size < h.firstIndex) {
          this.#find('checkpoint.heartbeat', seq, `heartbeat ${hb.where} claims size ${hb.size}, outside segment ${seq} (${h.firstIndex}..${h.firstIndex + scan.frames})`, { file: hb.where });
        }
      }
    }
    if (isOpen) {
      this.#resetContinuity();
      return;
    }
    // The seal: the trailer's checkpoint, compared with the copy in checkpoints/ when present.
    let seal: CpState | null = null;
    if (scan.trailer) {
      const tb = scan.trailer.checkpoint;
      if (sealFile && bytesEqual(sealFile.bytes, tb)) seal = sealFile.state;
      else {
        if (sealFile) {
          this.#find('checkpoint.copy', seq, `the seal checkpoint ${sealFile.item.name} differs from the one in the segment trailer`, { file: sealFile.item.name });
          // Check the trailer's copy on its own (signature, equivocation), without moving the
          // checkpoint chain a second time for the same seal — unless the file copy was unusable.
          seal = this.#checkpoint(tb, seq, null, null, sealFile.state === null);
        } else {
          seal = this.#checkpoint(tb, seq, null, null);
        }
      }
      if (seal) {
        const count = scan.trailer.count;
        const first = h?.firstIndex ?? 0;
        if (seal.kind !== 'seal') this.#find('checkpoint.parse', seq, `the trailer carries a ${seal.kind} checkpoint, not a seal`, file);
        if (seal.seq !== seq && h && seal.seq !== h.seq) this.#find('segment.sequence', seq, `the seal names segment ${seal.seq}`, file);
        if (seal.size !== first + count) {
          this.#find('checkpoint.size', seq, `seal covers ${seal.size} entries, the segment ends at ${first + count} (${count} entries from ${first})`, file);
        }
        const computed = scan.frontier;
        if (computed && !hashEqual(computed.root(), seal.root)) {
          // When the signed size lies inside the segment, say whether the signed prefix is intact
          // (then only entries beyond the seal were added) — the root at that size was probed.
          const atSeal = scan.rootsAt.get(seal.size);
          const detail =
            computed.size === seal.size
              ? `Merkle root over the ${computed.size} entries ${b64(computed.root())} differs from the signed root ${b64(seal.root)}`
              : atSeal && hashEqual(atSeal, seal.root)
                ? `the first ${seal.size} entries match the signed root, but ${computed.size - seal.size} unsigned entries follow them`
                : `the tree over the ${computed.size} entries present does not give the signed root for size ${seal.size}`;
          this.#find('merkle.root', seq, detail, file);
        }
        if (computed && !scan.trailer.endFrontier.equals(computed)) {
          this.#find('merkle.frontier', seq, 'trailer end frontier differs from the one computed from the entries', file);
        }
      }
    } else if (!scan.error) {
      this.#find('segment.trailer', seq, 'segment has no trailer (never sealed)', file);
    }
    if (!scan.trailer && sealFile?.state) seal = sealFile.state;
    if (seal) this.#afterSeal(seal, scan.error ? null : (scan.lastChain ?? null));
    else this.#resetContinuity();
  }

  /**
   * A segment's start: its frontier must hash to the root of the checkpoint it follows (the
   * previous seal, or a heartbeat at the same size), and its header must name that checkpoint.
   */
  #checkStart(frontierRoot: Uint8Array, firstIndex: number, prevHash: Uint8Array, seq: number, file: { file: string }): void {
    const byHash = this.#recent.get(toHex(prevHash)) ?? this.#prevRecent.get(toHex(prevHash));
    const prevSeal = this.#seals.get(seq - 1);
    const ref = byHash ?? (prevSeal && prevSeal.size === firstIndex ? prevSeal : undefined) ?? this.#rootAt(firstIndex);
    if (hashEqual(prevHash, ZERO32)) {
      if (firstIndex !== 0 || seq !== 0) this.#find('checkpoint.link', seq, 'header names no previous checkpoint but the segment does not start the log', file);
    } else if (!byHash && (prevSeal || this.#prevRecent.size > 0)) {
      this.#find('checkpoint.link', seq, 'header names a previous checkpoint that is not the one before this segment', file);
    }
    if (byHash && byHash.size !== firstIndex) {
      this.#find('merkle.frontier', seq, `header's previous checkpoint covers ${byHash.size} entries but the segment starts at ${firstIndex}`, { ...file, index: firstIndex });
      return;
    }
    if (ref && !hashEqual(ref.root, frontierRoot)) {
      this.#find('merkle.frontier', seq, `start frontier hashes to ${b64(frontierRoot)}, the signed checkpoint at size ${firstIndex} has ${b64(ref.root)}`, { ...file, index: firstIndex });
    }
    if (firstIndex === 0 && !hashEqual(frontierRoot, EMPTY_ROOT)) {
      this.#find('merkle.frontier', seq, 'segment at index 0 with a non-empty start frontier', file);
    }
  }

  #rootAt(size: number): { root: Uint8Array } | undefined {
    return this.#roots.get(size);
  }

  #freshness(): void {
    const max = this.#opts.expectFreshMs;
    if (max === null || max === undefined) return;
    const now = (this.#opts.now ?? Date.now)();
    const latestTime = this.summary.timeTo;
    if (latestTime === null) {
      this.#find('log.fresh', null, 'no validly signed checkpoint found, so the log cannot be shown to be fresh');
    } else if (now - latestTime > max) {
      this.#find(
        'log.fresh',
        this.#latest?.seq ?? null,
        `latest checkpoint was made ${new Date(latestTime).toISOString()}, ${fmtDuration(now - latestTime)} ago (allowed: ${fmtDuration(max)}): a deleted tail or a silent agent`,
      );
    }
  }
}

/** Maps the segment parser's check to the finding's check name. */
function formatCheckName(c: string): CheckName {
  switch (c) {
    case 'frame_crc':
      return 'frame.crc';
    case 'frame_length':
    case 'zero_fill':
    case 'frame_truncated':
      return 'frame.length';
    case 'chain':
      return 'chain.hash';
    case 'header_magic':
    case 'header_version':
    case 'header_crc':
    case 'header_field':
      return 'segment.header';
    default:
      return 'segment.trailer';
  }
}


function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Hashes the chunks as they stream past (for byte equality between sources). */
class DigestTap {
  readonly #h = createHash('sha256');
  async *tap(src: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    for await (const c of src) {
      this.#h.update(c);
      yield c;
    }
  }
  hex(): string {
    return this.#h.digest('hex');
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

function b64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64');
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to && out.length < 1_000_000; i++) out.push(i);
  return out;
}

function fmtRange(a: number, b: number): string {
  return a === b ? String(a) : `${a}..${b}`;
}

function segName(seq: number): string {
  return segmentFileName(seq);
}

function fmtDuration(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`;
  if (ms < 172_800_000) return `${(ms / 3_600_000).toFixed(1)}h`;
  return `${(ms / 86_400_000).toFixed(1)}d`;
}

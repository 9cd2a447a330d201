/**
 * The verifier's findings model and report (docs/verify.md is the reference for every name here).
 *
 * A finding is data, not an exception (STYLE.md habit 1): verification continues after a finding
 * so that the operator sees every problem in one run. A condition that prevents verification
 * altogether (usage, I/O, an unknown format version) is a `SealtrailError` instead and maps to exit
 * code 2 — never reported as tampering (sigstore-js #561).
 */

/**
 * The closed set of check names. Each is documented in docs/verify.md; names are part of the
 * public contract (`--json` consumers match on them), so add freely but never rename.
 */
export const CHECKS = [
  // Per frame / entry (streaming, first failure within a segment is reported)
  'frame.crc', //              a frame's CRC32C does not match its bytes
  'frame.length', //           a frame length runs past the segment's entry area or is impossible
  'chain.hash', //             an entry's stored chain hash != SHA-256(previous chain ‖ leaf hash)
  // Per segment
  'segment.header', //         header malformed: magic, fields, lengths
  'segment.trailer', //        trailer missing or malformed (a segment must be sealed)
  'segment.origin', //         header origin differs from --origin
  'segment.name', //           stored under a name other than the one its header implies
  'segment.sequence', //       segment sequence numbers not contiguous (missing, duplicated or reordered segment)
  'segment.index', //          first global index != previous segment's tree size
  'segment.start', //          the log does not start at sequence 0 / index 0 (head deleted)
  'segment.versions', //       an object store holds more than one version of a segment key (an overwrite)
  'chain.link', //             a segment's start chain value != the previous segment's last chain value
  'merkle.frontier', //        a segment's start frontier does not hash to the previous checkpoint's root
  'merkle.root', //            the root computed from frontier + entries != the checkpoint's root
  // Checkpoints
  'checkpoint.parse', //       not a well-formed C2SP signed note / tlog-checkpoint (strict, canonical)
  'checkpoint.signature', //   no valid Ed25519 signature from a trusted key (bad, missing, unknown key ID)
  'checkpoint.name', //        a checkpoint file's name does not match its signed content (replayed/relocated)
  'checkpoint.copy', //        the seal in checkpoints/ differs from the one in the segment trailer
  'checkpoint.origin', //      checkpoint origin differs from --origin
  'checkpoint.size', //        tree size != first index + number of entries
  'checkpoint.link', //        previous-checkpoint hash does not match the checkpoint before it
  'checkpoint.order', //       tree size shrinks or time goes backwards between consecutive checkpoints
  'checkpoint.heartbeat', //   a heartbeat checkpoint contradicts the segments (size/root/link)
  'checkpoint.equivocation', // two validly signed checkpoints for the same tree size with different roots
  'key.rotation', //           a key announcement that is malformed or not signed by an already-trusted key
  // Whole log / between sources
  'log.empty', //              a source holds no segment and no checkpoint at all
  'log.fresh', //              the latest checkpoint is older than --expect-fresh
  'source.unexpected', //      an object in the log's folders that is neither a segment nor a checkpoint
  'source.mismatch', //        the same segment/checkpoint object differs between sources
  'source.missing', //         a segment other sources hold is missing from this one (not at its end)
  'source.truncated', //       this source's latest checkpoint is behind the other sources'
] as const;

/** One of the closed set of check names. */
export type CheckName = (typeof CHECKS)[number];

/** One integrity finding. `segment` is the segment sequence number when one applies. */
export interface Finding {
  readonly check: CheckName;
  /** The source as the operator named it (a directory, `s3://…`, `dest:NAME`). */
  readonly source: string;
  /** Segment sequence number, or null when the finding is not about one segment. */
  readonly segment: number | null;
  /** Stored object name (file name or object key) the finding is about, when known. */
  readonly file?: string;
  /** Global entry index, when the finding is about one entry. */
  readonly index?: number;
  /** Byte offset inside the file, when known. */
  readonly offset?: number;
  /** One line of explanation: what was expected, what was found. */
  readonly message: string;
}

/** What one source contained and what was checked in it. */
export interface SourceSummary {
  readonly source: string;
  segments: number;
  entries: number;
  checkpoints: number;
  heartbeats: number;
  bytes: number;
  /** Segment sequence numbers seen, first and last (null when none). */
  firstSegment: number | null;
  lastSegment: number | null;
  /** Tree size and time of the latest validly signed checkpoint (null when none). */
  treeSize: number | null;
  latestRoot: string | null;
  /** Time range covered by the checkpoints, milliseconds since the epoch (null when unknown). */
  timeFrom: number | null;
  timeTo: number | null;
  /** Segments whose entries were skipped because of --since/--until (headers and checkpoints still checked). */
  skippedSegments: number;
  /** Segments byte-identical (SHA-256) to one already verified in an earlier source: its scan was reused. */
  identicalToVerified: number;
  /** Entries stored after the newest signed checkpoint (a ledger's open segment): checked, not yet signed. */
  unsignedEntries: number;
}

/** The whole result of a `verify` run; rendered by {@link renderHuman} and {@link renderJson}. */
export interface VerifyReport {
  readonly origin: string;
  readonly trustedKeys: readonly string[];
  readonly sources: SourceSummary[];
  readonly findings: Finding[];
  /** Keys that became trusted by an announcement in a checkpoint signed by a trusted key. */
  readonly rotatedKeys: string[];
  elapsedMs: number;
  readonly options: { readonly expectFreshMs: number | null; readonly since: number | null; readonly until: number | null };
}

/** Version tag of the `--json` schema (docs/verify.md); bumped only on incompatible change. */
export const REPORT_SCHEMA = 'sealtrail.verify/v1';

/** A fresh, empty summary for one source. */
export function emptySummary(source: string): SourceSummary {
  return {
    source,
    segments: 0,
    entries: 0,
    checkpoints: 0,
    heartbeats: 0,
    bytes: 0,
    firstSegment: null,
    lastSegment: null,
    treeSize: null,
    latestRoot: null,
    timeFrom: null,
    timeTo: null,
    skippedSegments: 0,
    identicalToVerified: 0,
    unsignedEntries: 0,
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** Sort key: source order is kept, then segment, then index, so output is deterministic. */
function sortFindings(report: VerifyReport): Finding[] {
  const order = new Map(report.sources.map((s, i) => [s.source, i]));
  return [...report.findings].sort(
    (a, b) =>
      (order.get(a.source) ?? -1) - (order.get(b.source) ?? -1) ||
      (a.segment ?? -1) - (b.segment ?? -1) ||
      (a.index ?? -1) - (b.index ?? -1),
  );
}

/** The stable `--json` document (docs/verify.md "JSON output"). */
export function renderJson(report: VerifyReport): string {
  const doc = {
    schema: REPORT_SCHEMA,
    result: report.findings.length === 0 ? 'intact' : 'findings',
    origin: report.origin,
    trustedKeys: report.trustedKeys,
    rotatedKeys: report.rotatedKeys,
    options: {
      expectFreshMs: report.options.expectFreshMs,
      since: iso(report.options.since),
      until: iso(report.options.until),
    },
    checks: CHECKS,
    sources: report.sources.map((s) => ({
      source: s.source,
      segments: s.segments,
      entries: s.entries,
      checkpoints: s.checkpoints,
      heartbeats: s.heartbeats,
      bytes: s.bytes,
      firstSegment: s.firstSegment,
      lastSegment: s.lastSegment,
      treeSize: s.treeSize,
      root: s.latestRoot,
      timeFrom: iso(s.timeFrom),
      timeTo: iso(s.timeTo),
      skippedSegments: s.skippedSegments,
      identicalToVerified: s.identicalToVerified,
      unsignedEntries: s.unsignedEntries,
    })),
    findings: sortFindings(report).map((f) => ({
      check: f.check,
      source: f.source,
      segment: f.segment,
      ...(f.file !== undefined ? { file: f.file } : {}),
      ...(f.index !== undefined ? { index: f.index } : {}),
      ...(f.offset !== undefined ? { offset: f.offset } : {}),
      message: f.message,
    })),
    elapsedMs: Math.round(report.elapsedMs),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** The `--json` document for a run that could not verify (exit 2). */
export function renderJsonError(code: string, message: string): string {
  return `${JSON.stringify({ schema: REPORT_SCHEMA, result: 'error', error: { code, message } }, null, 2)}\n`;
}

/** The human summary: what was checked, counts, time range, then every finding on its own line. */
export function renderHuman(report: VerifyReport): string {
  const lines: string[] = [];
  lines.push(`origin ${report.origin}; trusted keys: ${report.trustedKeys.join(', ')}`);
  if (report.rotatedKeys.length > 0) lines.push(`keys announced by rotation and trusted: ${report.rotatedKeys.join(', ')}`);
  for (const s of report.sources) {
    const segs = s.firstSegment === null ? 'no segments' : `${s.segments} segments (#${s.firstSegment}..#${s.lastSegment})`;
    lines.push(
      `${s.source}: ${segs}, ${s.entries} entries, ${s.checkpoints} checkpoints (${s.heartbeats} heartbeats), ${s.bytes} bytes` +
        (s.treeSize !== null ? `; tree size ${s.treeSize}` : '') +
        (s.timeFrom !== null ? `; ${iso(s.timeFrom)} .. ${iso(s.timeTo)}` : '') +
        (s.skippedSegments > 0 ? `; ${s.skippedSegments} segments outside --since/--until (entries not hashed)` : '') +
        (s.identicalToVerified > 0 ? `; ${s.identicalToVerified} segments byte-identical to an earlier source (not re-hashed)` : '') +
        (s.unsignedEntries > 0 ? `; ${s.unsignedEntries} entries after the newest signed checkpoint (not yet signed)` : ''),
    );
  }
  lines.push(
    'checked: frame CRC32C, chain hashes, Merkle roots vs checkpoints, Ed25519 signatures (strict RFC 8032, trusted keys only),' +
      ' checkpoint links and order, segment sequence, indices and names' +
      (report.options.expectFreshMs !== null ? ', freshness' : '') +
      (report.sources.length > 1 ? ', byte equality and equivocation between sources' : ''),
  );
  const findings = sortFindings(report);
  if (findings.length === 0) {
    lines.push(`INTACT: no findings (${Math.round(report.elapsedMs)} ms)`);
  } else {
    lines.push(`FINDINGS: ${findings.length}`);
    for (const f of findings) {
      const where = [
        f.segment !== null ? `segment ${f.segment}` : null,
        f.file !== undefined ? `file ${f.file}` : null,
        f.index !== undefined ? `entry ${f.index}` : null,
        f.offset !== undefined ? `offset ${f.offset}` : null,
      ]
        .filter((x) => x !== null)
        .join(', ');
      lines.push(`  [${f.check}] ${f.source}${where ? ` (${where})` : ''}: ${f.message}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

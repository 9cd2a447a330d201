/**
 * The one destination interface, used by the replicator (writes) and by `sealtrail verify` (reads).
 * Retry status is data (STYLE.md habit 4): `put` never throws for trouble at the destination; it
 * answers confirmed / retryable / failed. Reads throw SealtrailError('IO') naming what failed.
 */

import { open } from 'node:fs/promises';

/**
 * The first `size` bytes of a file, stored as they are on disk and read a chunk at a time: the
 * forwarder hands sealed segments over this way, so that an upload in flight costs a chunk of
 * memory, not a whole segment.
 */
export interface FileBody {
  readonly file: string;
  readonly size: number;
}

/** What to store: bytes in memory, or a file (FileBody). */
export type PutBody = Uint8Array | FileBody;

/** One object to store: `key` is relative (see keys.ts), `sha256` is the SHA-256 of `body`. */
export interface PutObject {
  readonly key: string;
  readonly body: PutBody;
  readonly sha256: Uint8Array;
}

/** Bytes read at a time from a FileBody. */
export const BODY_CHUNK = 1024 * 1024;

export function bodySize(body: PutBody): number {
  return body instanceof Uint8Array ? body.length : body.size;
}

/**
 * The body's bytes in order: a Uint8Array as it is, a FileBody in chunks of at most BODY_CHUNK.
 * With `reuse`, every chunk of a file is read into the same buffer — for a consumer that is done
 * with a chunk before it asks for the next (hashing, a write it awaits): a fresh MiB per chunk would
 * be garbage that only a collection frees. Without it each chunk is a buffer of its own.
 * @throws Error when the file holds fewer than `size` bytes (it changed since it was hashed)
 */
export async function* bodyChunks(body: PutBody, reuse = false): AsyncGenerator<Uint8Array> {
  if (body instanceof Uint8Array) {
    yield body;
    return;
  }
  const fh = await open(body.file, 'r');
  try {
    const shared = reuse ? Buffer.allocUnsafe(Math.min(BODY_CHUNK, body.size)) : undefined;
    for (let pos = 0; pos < body.size; ) {
      const buf = shared ?? Buffer.allocUnsafe(Math.min(BODY_CHUNK, body.size - pos));
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, body.size - pos), pos);
      if (bytesRead === 0) throw new Error(`${body.file} ends at ${pos} bytes, before the ${body.size} that were hashed`);
      yield buf.subarray(0, bytesRead);
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/** What a destination confirmed after reading the object back (DESIGN.md "Forwarding"). */
export interface Receipt {
  readonly destination: string;
  readonly key: string;
  readonly size: number;
  /** Lower-case hex SHA-256 of the stored bytes, as read back. */
  readonly sha256: string;
  /** S3: the version this upload created (or found); readers must look at exactly this one. */
  readonly versionId?: string;
  /** S3: Object Lock retain-until date as the server reports it (ISO 8601). */
  readonly retainUntil?: string;
  /** The identical object was already there (a retry after a crash); nothing new was written. */
  readonly alreadyPresent: boolean;
  readonly confirmedAt: string;
}

export type PutResult =
  | { readonly kind: 'confirmed'; readonly receipt: Receipt }
  | { readonly kind: 'retryable'; readonly afterMs: number; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string };

/** One stored object version (fs destinations have exactly one version per key). */
export interface ObjectVersion {
  readonly key: string;
  readonly size: number;
  readonly versionId?: string;
  readonly isLatest: boolean;
  /** S3: a delete marker hides the object; for write-once data it is a sign of tampering. */
  readonly deleteMarker: boolean;
  readonly lastModified?: Date;
}

export interface HeadInfo {
  readonly key: string;
  readonly size: number;
  readonly versionId?: string;
  /** S3 Object Lock mode (COMPLIANCE | GOVERNANCE) or undefined when not locked. */
  readonly lockMode?: string;
  readonly retainUntil?: Date;
  readonly etag?: string;
  /** fs: no write permission bit is set. */
  readonly readOnly?: boolean;
}

export interface Destination {
  readonly name: string;
  readonly type: 'fs' | 's3';
  /**
   * Store once and confirm by reading back. Never overwrites an existing key. An aborted `signal`
   * (shutdown) ends a network request early with a retryable result.
   */
  put(obj: PutObject, opts?: { readonly signal?: AbortSignal }): Promise<PutResult>;
  /** Latest objects whose relative key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ObjectVersion[]>;
  /** Every version and delete marker under `prefix`, sorted by key then oldest first. */
  listVersions(prefix: string): Promise<ObjectVersion[]>;
  get(key: string, versionId?: string): Promise<Uint8Array>;
  /** undefined when the key (or version) does not exist. */
  head(key: string, versionId?: string): Promise<HeadInfo | undefined>;
  /** Release sockets; safe to call twice. */
  close(): void;
}

/** Byte-wise key order (the ledger's names sort in sequence order as plain ASCII). */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

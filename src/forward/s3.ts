/**
 * S3 destination with Object Lock (G6, DESIGN.md "Forwarding").
 *
 * Every object is one PutObject (lock headers on multipart uploads are silently dropped by some
 * servers, Ceph RGW among them) with `x-amz-object-lock-mode: COMPLIANCE`, a retain-until date,
 * `Content-MD5` (RFC 1864) and `x-amz-checksum-sha256`, and `If-None-Match: *`.
 *
 * In a versioned (lock) bucket an overwrite does not fail: it adds a version, and RGW even ignores
 * `If-None-Match: *` there (see /work/shared/recipes/s3-object-lock-server.md). So `put` first
 * lists the versions of the key and writes only when there are none; afterwards it reads the
 * version it created back (size, SHA-256 of the body, ETag = MD5, lock mode, retain-until) and
 * checks that the key still has exactly one version. An existing key with other bytes, or a second
 * version, is reported as failed and never accepted.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { SealtrailError, errorMessage } from '../errors.js';
import { noteBytesRead } from '../receiver/read-gc.js';
import type { Logger } from '../telemetry/logger.js';
import { checkKey } from './keys.js';
import { BODY_CHUNK, type Destination, type HeadInfo, type ObjectVersion, type PutBody, type PutObject, type PutResult, bodyChunks, bodySize, compareKeys } from './destination.js';

export interface S3ConnectionOptions {
  readonly bucket: string;
  readonly prefix?: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly forcePathStyle?: boolean;
  /** Both or neither; neither means the standard AWS credential chain (env, profile, IMDS, …). */
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  /** PEM file with the CA(s) that sign the endpoint's certificate. */
  readonly caFile?: string;
  /** Tests: replaces the HTTP handler (e.g. to capture the exact request headers). */
  readonly requestHandler?: S3ClientConfig['requestHandler'];
  /**
   * Where the SDK's own warnings and errors go (as structured lines, at debug level: every failure
   * also reaches the caller as an error, which it logs with context). Without it they are dropped —
   * never printed to the console, where they would break a stream of JSON log lines.
   */
  readonly logger?: Logger;
}

export interface S3DestinationOptions extends S3ConnectionOptions {
  readonly name: string;
  /** Object Lock COMPLIANCE retention in days from the upload. */
  readonly retentionDays: number;
  readonly now?: () => Date;
}

/**
 * Builds an S3 client with the settings this project needs everywhere.
 * @throws SealtrailError CONFIG_INVALID when only one of the two keys is set, CONFIG_IO when the CA file is unreadable.
 */
export function makeS3Client(o: S3ConnectionOptions, what = `s3://${o.bucket}`): S3Client {
  if ((o.accessKeyId === undefined) !== (o.secretAccessKey === undefined)) {
    throw new SealtrailError('CONFIG_INVALID', `${what}: set both access_key_id and secret_access_key, or neither (to use the AWS credential chain)`);
  }
  let requestHandler: S3ClientConfig['requestHandler'] = o.requestHandler ?? {
    connectionTimeout: 5_000,
    requestTimeout: 300_000,
  };
  if (o.caFile !== undefined && o.requestHandler === undefined) {
    let ca: Buffer;
    try {
      ca = readFileSync(o.caFile);
    } catch (e) {
      throw new SealtrailError('CONFIG_IO', `${what}: cannot read ca_file ${o.caFile}: ${errorMessage(e)}`, { cause: e });
    }
    requestHandler = { connectionTimeout: 5_000, requestTimeout: 300_000, httpsAgent: new HttpsAgent({ ca, keepAlive: true }) };
  }
  return new S3Client({
    region: o.region ?? 'us-east-1',
    ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
    forcePathStyle: o.forcePathStyle ?? false,
    ...(o.accessKeyId !== undefined && o.secretAccessKey !== undefined
      ? { credentials: { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey } }
      : {}),
    // The default aws-chunked trailer checksum gets 411 MissingContentLength from RGW; we send our
    // own Content-MD5 and x-amz-checksum-sha256 headers instead (recipe, "@aws-sdk/client-s3 settings").
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // The replicator owns retries (capped backoff with jitter); one SDK retry covers a dropped keep-alive socket.
    maxAttempts: 2,
    requestHandler,
    logger: sdkLogger(o.logger),
  });
}

/**
 * The SDK's logger: its warnings and errors as debug lines of ours (or nowhere), its chatter dropped.
 * Without one the SDK writes some warnings with console.warn — e.g. "An error was encountered in a
 * non-retryable streaming request." on every failed streamed upload, which the forwarder retries anyway.
 */
export function sdkLogger(log: Logger | undefined): NonNullable<S3ClientConfig['logger']> {
  const quiet = (): void => undefined;
  const toDebug = (level: string) => (...content: unknown[]): void => log?.debug({ sdk: level, detail: content.map((c) => (typeof c === 'string' ? c : errorMessage(c))).join(' ') }, 'AWS SDK message');
  return { trace: quiet, debug: quiet, info: quiet, warn: toDebug('warn'), error: toDebug('error') };
}

/** The pieces of an SDK error we classify on. */
export function s3ErrorInfo(e: unknown): { name: string; status?: number; message: string } {
  const err = e as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; message?: string };
  const status = err?.$metadata?.httpStatusCode;
  return { name: err?.Code ?? err?.name ?? 'Error', ...(status !== undefined ? { status } : {}), message: errorMessage(e) };
}

/** Errors a later attempt can fix by itself: network, throttling, server trouble, a digest mangled in transit. */
function isRetryable(e: unknown): boolean {
  const { name, status } = s3ErrorInfo(e);
  if (status === undefined) return true; // no HTTP answer: connection refused/reset, DNS, timeout
  if (status >= 500 || status === 429 || status === 408) return true;
  return ['RequestTimeout', 'RequestTimeTooSkewed', 'BadDigest', 'SlowDown', 'OperationAborted', 'ConditionalRequestConflict', 'InternalError', 'ServiceUnavailable', 'TimeoutError'].includes(name);
}

async function bodyBytes(body: unknown): Promise<Uint8Array> {
  const b = body as { transformToByteArray?: () => Promise<Uint8Array> } | undefined;
  if (!b?.transformToByteArray) throw new Error('GetObject returned no body');
  return b.transformToByteArray();
}

/** MD5 of a body (S3's Content-MD5 and ETag), a chunk at a time for a file. */
async function md5Of(body: PutBody): Promise<Buffer> {
  const h = createHash('md5');
  for await (const chunk of bodyChunks(body, true)) h.update(chunk);
  return h.digest();
}

/**
 * Both ends of an upload hand the agent a fresh Buffer per read — the body's file chunks (a stream
 * consumer may hold on to a chunk, so they cannot share one buffer) and the read-back's socket reads —
 * which V8 frees only when a young-generation collection finds them dead, and the young generation
 * fills from JavaScript allocations alone. So these bytes are counted like the receivers' socket reads
 * (read-gc.ts): a young collection every 8 MiB. Without it, an agent forwarding to S3 under maximum
 * load let ≈ 30–50 MB of dead buffers pile up between collections (docs/benchmarks.md, "Forwarding",
 * session 21).
 */
async function* counted(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    noteBytesRead(chunk.length);
    yield chunk;
  }
}

/**
 * Size and lower-case hex SHA-256 of a GetObject body, hashed as it streams in: confirming a 64 MiB
 * segment must not cost the agent another 64 MiB of memory per upload in flight.
 */
async function hashBody(body: unknown): Promise<{ size: number; sha256: string }> {
  if (body === undefined || body === null || typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function') {
    throw new Error('GetObject returned no body');
  }
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of counted(body as AsyncIterable<Uint8Array>)) {
    h.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: h.digest('hex') };
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export class S3Destination implements Destination {
  readonly name: string;
  readonly type = 's3' as const;
  readonly bucket: string;
  /** Normalised: '' or ends without a slash. */
  readonly prefix: string;
  readonly client: S3Client;
  readonly retentionDays: number;
  readonly #now: () => Date;

  constructor(opts: S3DestinationOptions) {
    this.name = opts.name;
    this.bucket = opts.bucket;
    this.prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.retentionDays = opts.retentionDays;
    this.#now = opts.now ?? (() => new Date());
    this.client = makeS3Client(opts, `destination ${opts.name}`);
  }

  /** Full S3 key of a relative key. */
  fullKey(key: string): string {
    checkKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  #rel(full: string): string {
    return this.prefix ? full.slice(this.prefix.length + 1) : full;
  }

  #where(key: string): string {
    return `${this.name} (s3://${this.bucket}/${this.fullKey(key)})`;
  }

  async put(obj: PutObject, opts: { readonly signal?: AbortSignal } = {}): Promise<PutResult> {
    const Key = this.fullKey(obj.key);
    const send = { abortSignal: opts.signal };
    const want = hex(obj.sha256);
    const md5 = await md5Of(obj.body);
    try {
      const before = await this.#versionsOf(Key, opts.signal);
      if (before.length > 0) return await this.#judgeExisting(obj, before, want, md5, opts.signal);

      const retainUntil = new Date(this.#now().getTime() + this.retentionDays * 86_400_000);
      let versionId: string | undefined;
      // A file goes up as a stream of its first `size` bytes (the SDK does not retry a streamed
      // request: the replicator does, with a fresh stream). The stream is ours to close: a request
      // that fails before reading it must not leave its descriptor open, nor an error event (the file
      // released meanwhile) with no listener, which would end the process.
      const stream = obj.body instanceof Uint8Array ? undefined : Readable.from(counted(bodyChunks(obj.body)), { objectMode: false, highWaterMark: BODY_CHUNK });
      stream?.on('error', () => undefined); // a read error fails the request, which reports it
      try {
        const out = await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key,
            Body: stream ?? (obj.body as Uint8Array),
            ContentLength: bodySize(obj.body),
            ContentType: 'application/octet-stream',
            ContentMD5: md5.toString('base64'),
            ChecksumSHA256: Buffer.from(obj.sha256).toString('base64'),
            ObjectLockMode: 'COMPLIANCE',
            ObjectLockRetainUntilDate: retainUntil,
            IfNoneMatch: '*',
          }),
          send,
        );
        versionId = out.VersionId;
      } catch (e) {
        const { name, status } = s3ErrorInfo(e);
        if (status === 412 || name === 'PreconditionFailed') {
          // Someone else created the key between our listing and the PUT: judge what is there.
          return await this.#judgeExisting(obj, await this.#versionsOf(Key, opts.signal), want, md5, opts.signal);
        }
        throw e;
      } finally {
        stream?.destroy();
      }
      if (versionId === undefined) {
        return { kind: 'failed', reason: `${this.#where(obj.key)}: the PUT returned no VersionId: the bucket is not versioned, so it has no Object Lock` };
      }
      return await this.#confirm(obj, Key, versionId, want, md5.toString('hex'), retainUntil, false, opts.signal);
    } catch (e) {
      const info = s3ErrorInfo(e);
      const reason = `${this.#where(obj.key)}: ${info.name}${info.status ? ` (HTTP ${info.status})` : ''}: ${info.message}`;
      return isRetryable(e) ? { kind: 'retryable', afterMs: 0, reason } : { kind: 'failed', reason };
    }
  }

  /** The key exists already: only one identical, locked version is accepted (a retry after a crash). */
  async #judgeExisting(obj: PutObject, versions: ObjectVersion[], want: string, md5: Buffer, signal?: AbortSignal): Promise<PutResult> {
    const where = this.#where(obj.key);
    if (versions.length !== 1 || versions[0]!.deleteMarker) {
      return {
        kind: 'failed',
        reason: `${where}: key already has ${versions.length} versions${versions.some((v) => v.deleteMarker) ? ' (with a delete marker)' : ''}; a write-once key must have exactly one: not writing, check for tampering`,
      };
    }
    const v = versions[0]!;
    if (v.versionId === undefined) return { kind: 'failed', reason: `${where}: existing object has no version id: bucket without Object Lock` };
    return this.#confirm(obj, this.fullKey(obj.key), v.versionId, want, md5.toString('hex'), undefined, true, signal);
  }

  /** Read the version back and check every property we rely on. */
  async #confirm(
    obj: PutObject,
    Key: string,
    versionId: string,
    want: string,
    md5hex: string,
    requestedRetainUntil: Date | undefined,
    alreadyPresent: boolean,
    signal?: AbortSignal,
  ): Promise<PutResult> {
    const where = this.#where(obj.key);
    const got = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, VersionId: versionId }), { abortSignal: signal });
    const { size, sha256: have } = await hashBody(got.Body);
    if (size !== bodySize(obj.body) || have !== want) {
      return {
        kind: 'failed',
        reason: `${where}: version ${versionId} holds different content (size ${size}, sha256 ${have}; expected size ${bodySize(obj.body)}, sha256 ${want})${alreadyPresent ? '; it was not overwritten' : ''}`,
      };
    }
    const etag = got.ETag?.replace(/"/g, '');
    if (etag && /^[0-9a-f]{32}$/.test(etag) && etag !== md5hex) {
      return { kind: 'failed', reason: `${where}: ETag ${etag} is not the MD5 ${md5hex} of what was sent` };
    }
    if (got.ObjectLockMode !== 'COMPLIANCE') {
      return { kind: 'failed', reason: `${where}: version ${versionId} has lock mode ${got.ObjectLockMode ?? 'none'}, not COMPLIANCE: the destination does not lock objects` };
    }
    const until = got.ObjectLockRetainUntilDate;
    const minUntil = requestedRetainUntil
      ? requestedRetainUntil.getTime() - 1000 // servers keep whole seconds
      : this.#now().getTime();
    if (!until || until.getTime() < minUntil) {
      return { kind: 'failed', reason: `${where}: retain-until ${until?.toISOString() ?? 'missing'} is earlier than required ${new Date(minUntil).toISOString()}` };
    }
    // A second version under our key would be what verify reports as tampering: do not confirm it.
    const after = await this.#versionsOf(Key, signal);
    if (after.length !== 1) {
      return { kind: 'failed', reason: `${where}: key has ${after.length} versions after the upload; expected exactly one` };
    }
    return {
      kind: 'confirmed',
      receipt: {
        destination: this.name,
        key: obj.key,
        size,
        sha256: have,
        versionId,
        retainUntil: until.toISOString(),
        alreadyPresent,
        confirmedAt: this.#now().toISOString(),
      },
    };
  }

  /** Every version and delete marker of exactly this full key. */
  async #versionsOf(Key: string, signal?: AbortSignal): Promise<ObjectVersion[]> {
    return (await this.#listVersionsFull(Key, signal)).filter((v) => v.key === this.#rel(Key));
  }

  async #listVersionsFull(fullPrefix: string, signal?: AbortSignal): Promise<ObjectVersion[]> {
    const out: ObjectVersion[] = [];
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    for (;;) {
      const r = await this.client.send(
        new ListObjectVersionsCommand({ Bucket: this.bucket, Prefix: fullPrefix, KeyMarker, VersionIdMarker }),
        { abortSignal: signal },
      );
      for (const v of r.Versions ?? []) {
        if (v.Key === undefined) continue;
        out.push({
          key: this.#rel(v.Key),
          size: v.Size ?? 0,
          ...(v.VersionId !== undefined && v.VersionId !== 'null' ? { versionId: v.VersionId } : {}),
          isLatest: v.IsLatest ?? false,
          deleteMarker: false,
          ...(v.LastModified ? { lastModified: v.LastModified } : {}),
        });
      }
      for (const m of r.DeleteMarkers ?? []) {
        if (m.Key === undefined) continue;
        out.push({
          key: this.#rel(m.Key),
          size: 0,
          ...(m.VersionId !== undefined && m.VersionId !== 'null' ? { versionId: m.VersionId } : {}),
          isLatest: m.IsLatest ?? false,
          deleteMarker: true,
          ...(m.LastModified ? { lastModified: m.LastModified } : {}),
        });
      }
      if (!r.IsTruncated) break;
      KeyMarker = r.NextKeyMarker;
      VersionIdMarker = r.NextVersionIdMarker;
    }
    // Oldest first within a key; S3 lists newest first.
    return out.sort((a, b) => compareKeys(a.key, b.key) || (a.lastModified?.getTime() ?? 0) - (b.lastModified?.getTime() ?? 0));
  }

  #fullPrefix(prefix: string): string {
    return this.prefix ? `${this.prefix}/${prefix}` : prefix;
  }

  async list(prefix: string): Promise<ObjectVersion[]> {
    const out: ObjectVersion[] = [];
    let ContinuationToken: string | undefined;
    try {
      for (;;) {
        const r = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.#fullPrefix(prefix), ContinuationToken }),
        );
        for (const o of r.Contents ?? []) {
          if (o.Key === undefined) continue;
          out.push({ key: this.#rel(o.Key), size: o.Size ?? 0, isLatest: true, deleteMarker: false, ...(o.LastModified ? { lastModified: o.LastModified } : {}) });
        }
        if (!r.IsTruncated) break;
        ContinuationToken = r.NextContinuationToken;
      }
    } catch (e) {
      throw new SealtrailError('IO', `${this.name}: cannot list s3://${this.bucket}/${this.#fullPrefix(prefix)}: ${errorMessage(e)}`, { cause: e });
    }
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  async listVersions(prefix: string): Promise<ObjectVersion[]> {
    try {
      return await this.#listVersionsFull(this.#fullPrefix(prefix));
    } catch (e) {
      throw new SealtrailError('IO', `${this.name}: cannot list versions under s3://${this.bucket}/${this.#fullPrefix(prefix)}: ${errorMessage(e)}`, { cause: e });
    }
  }

  async get(key: string, versionId?: string): Promise<Uint8Array> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key), VersionId: versionId }));
      return await bodyBytes(r.Body);
    } catch (e) {
      throw new SealtrailError('IO', `${this.#where(key)}${versionId ? ` version ${versionId}` : ''}: cannot read: ${errorMessage(e)}`, { cause: e });
    }
  }

  async head(key: string, versionId?: string): Promise<HeadInfo | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key), VersionId: versionId }));
      return {
        key,
        size: r.ContentLength ?? 0,
        ...(r.VersionId ? { versionId: r.VersionId } : {}),
        ...(r.ObjectLockMode ? { lockMode: r.ObjectLockMode } : {}),
        ...(r.ObjectLockRetainUntilDate ? { retainUntil: r.ObjectLockRetainUntilDate } : {}),
        ...(r.ETag ? { etag: r.ETag.replace(/"/g, '') } : {}),
      };
    } catch (e) {
      const { status, name } = s3ErrorInfo(e);
      if (status === 404 || name === 'NotFound' || name === 'NoSuchKey' || name === 'NoSuchVersion') return undefined;
      throw new SealtrailError('IO', `${this.#where(key)}: cannot head: ${errorMessage(e)}`, { cause: e });
    }
  }

  close(): void {
    this.client.destroy();
  }
}

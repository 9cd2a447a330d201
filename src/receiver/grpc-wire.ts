/**
 * The gRPC-over-HTTP/2 wire details the OTLP/gRPC receiver needs for its one unary method, written
 * from grpc/grpc doc/PROTOCOL-HTTP2.md ("Requests", "Responses") and doc/compression.md:
 *
 * - Length-Prefixed-Message: Compressed-Flag (1 byte, 0 or 1), Message-Length (4 bytes, big
 *   endian), Message. DATA frame boundaries have no relation to message boundaries ("Data
 *   Frames"), so the reader accepts the prefix and the message split anywhere.
 * - grpc-timeout: 1–8 ASCII digits and a unit H M S m u n.
 * - grpc-message: UTF-8, then percent-encoded except space and VCHAR other than '%'.
 * - grpc-encoding: identity, gzip, deflate here; anything else is UNIMPLEMENTED (compression.md,
 *   test case 4) with the supported ones listed in grpc-accept-encoding.
 *
 * Pure functions and one small state machine; no I/O except the asynchronous zlib call.
 */
import zlib from 'node:zlib';
import { SLAB_BYTES, giveBackSlab, takeSlab } from '../otlp/index.js';
import { giveBody, takeBody } from './body-pool.js';

/** The message codings this receiver decompresses, as sent in `grpc-accept-encoding`. */
export const GRPC_ACCEPT_ENCODING = 'identity,deflate,gzip';

export type GrpcCoding = 'identity' | 'gzip' | 'deflate';

/** A request that cannot be served, as a receive-outcome kind (src/receiver/status.ts maps it). */
export interface WireError {
  readonly kind: 'too_large' | 'protocol_error' | 'unsupported_encoding' | 'unsupported_media_type';
  readonly message: string;
}

/**
 * Parses `grpc-encoding` (absent = identity).
 * Returns the coding, or an `unsupported_encoding` error naming the supported ones.
 */
export function parseGrpcEncoding(value: string | undefined): GrpcCoding | WireError {
  if (value === undefined || value === 'identity') return 'identity';
  if (value === 'gzip' || value === 'deflate') return value;
  return {
    kind: 'unsupported_encoding',
    message: `grpc-encoding "${value.slice(0, 64)}" is not supported: compress messages with one of ${GRPC_ACCEPT_ENCODING}`,
  };
}

/**
 * Checks `content-type`. PROTOCOL-HTTP2.md: it must begin with "application/grpc"; otherwise the
 * server SHOULD answer HTTP 415 (`http415: true`). OTLP/gRPC messages are protobuf, so of the
 * subtypes only "+proto" (or none) is served. Parameters after ';' are ignored.
 */
export function checkGrpcContentType(value: string | undefined): undefined | (WireError & { readonly http415: boolean }) {
  if (value === 'application/grpc' || value === 'application/grpc+proto') return undefined; // the hot path
  const media = (value ?? '').split(';')[0]!.trim().toLowerCase();
  if (media === 'application/grpc' || media === 'application/grpc+proto') return undefined;
  if (media.startsWith('application/grpc')) {
    return {
      kind: 'unsupported_media_type',
      http415: false,
      message: `content-type ${media} is not supported: OTLP/gRPC messages are protobuf (application/grpc or application/grpc+proto)`,
    };
  }
  return {
    kind: 'unsupported_media_type',
    http415: true,
    message: `content-type ${value === undefined ? '(none)' : `"${media.slice(0, 64)}"`} is not gRPC: send application/grpc`,
  };
}

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };
/** setTimeout's largest delay; longer deadlines are as good as none for one request. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Parses `grpc-timeout` ("TimeoutValue TimeoutUnit": at most 8 digits, unit H M S m u n) into
 * milliseconds, rounded up (a deadline of 1n still gets a 1 ms timer). Absent → undefined (no
 * deadline: "If Timeout is omitted a server should assume an infinite timeout").
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined | WireError {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) {
    return { kind: 'protocol_error', message: `invalid grpc-timeout "${value.slice(0, 32)}": expected 1-8 digits and a unit H, M, S, m, u or n` };
  }
  return Math.min(MAX_TIMER_MS, Math.ceil(Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!));
}

const PLAIN_MESSAGE = /^[\x20-\x24\x26-\x7e]*$/;

/**
 * Percent-encodes a status message for `grpc-message` (PROTOCOL-HTTP2.md "Responses": UTF-8 bytes,
 * each outside %x20-%x24 / %x26-%x7E written as %XX).
 */
export function percentEncodeGrpcMessage(message: string): string {
  if (PLAIN_MESSAGE.test(message)) return message;
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A complete request message: its Compressed-Flag and its (still compressed) bytes. */
export interface FramedMessage {
  readonly compressed: boolean;
  readonly data: Buffer;
  /**
   * Gives `data`'s memory back to its pool (a slab, or the body pool for messages above 64 KiB);
   * call once, when nothing reads `data` any more. Not calling it is safe (the garbage collector takes the buffer instead).
   */
  readonly release: () => void;
}

/**
 * Messages of up to SLAB_BYTES (5 bytes of prefix included) are copied into a pooled slab, the
 * same pool the entry arenas use (src/otlp/wire.ts); larger ones into a buffer of the OTLP/HTTP
 * body pool (src/receiver/body-pool.ts), as soon as the prefix gives their length. Why: node:http2
 * hands a message over in DATA chunks of ≤ 16 KiB, and joining them with Buffer.concat made a fresh
 * ArrayBuffer per request; V8 counts those as external memory and answers with extra garbage
 * collections ("(garbage collector)" 19.9 % of the gRPC agent's profile before, docs/benchmarks.md
 * "What changed in session 6") and lets them pile up between collections: under 1,000-record
 * requests (≈ 370 KB) the agent's external memory reached 45 MB (session 11, docs/benchmarks.md).
 */
const MESSAGE_BUFFER = SLAB_BYTES;

/**
 * Collects the one Length-Prefixed-Message of a unary request from DATA chunks of any size.
 * `push` reports an error as soon as the prefix shows one (a declared length above `limit`, a bad
 * Compressed-Flag, bytes after the message), so an oversized message is refused after 5 bytes,
 * before its body is read. `end` is called at END_STREAM.
 */
export class UnaryMessageReader {
  readonly #limit: number;
  readonly #describeLimit: string;
  #chunks: Buffer[] = [];
  #have = 0;
  /** Total bytes of prefix + message once the prefix is known; -1 before. */
  #want = -1;
  #flag = 0;
  /**
   * A pooled buffer the chunks are copied into once the prefix gives the message's length: a slab
   * (takeSlab) when the message fits one (#want ≤ MESSAGE_BUFFER), else from the body pool (takeBody).
   */
  #pooled: Buffer | undefined;

  /** `limit`: largest message in bytes; `describeLimit` names the setting in error messages. */
  constructor(limit: number, describeLimit: string) {
    this.#limit = limit;
    this.#describeLimit = describeLimit;
  }

  /** Bytes received so far. */
  get received(): number {
    return this.#have;
  }

  /** Takes the next DATA chunk; returns an error when the stream can no longer be a valid request. */
  push(chunk: Buffer): WireError | undefined {
    if (chunk.length === 0) return undefined;
    if (this.#pooled) {
      if (this.#have + chunk.length > this.#want) {
        this.#dropPooled();
        return { kind: 'protocol_error', message: 'more than one request message: LogsService/Export is a unary method (one message per call)' };
      }
      chunk.copy(this.#pooled, this.#have);
      this.#have += chunk.length;
      return undefined;
    }
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    if (this.#want < 0 && this.#have >= 5) {
      const head = this.#chunks[0]!.length >= 5 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#have);
      this.#flag = head[0]!;
      const len = head.readUInt32BE(1);
      if (this.#flag > 1) {
        return { kind: 'protocol_error', message: `invalid gRPC Compressed-Flag ${this.#flag} in the message prefix (must be 0 or 1)` };
      }
      if (len > this.#limit) {
        this.#chunks = [];
        return {
          kind: 'too_large',
          message: `received message larger than max (${len} vs ${this.#limit} bytes, ${this.#describeLimit}); send smaller batches`,
        };
      }
      this.#want = 5 + len;
      if (this.#have <= this.#want) {
        // The rest of the message goes straight into a pooled slab (takeSlab) or body (takeBody).
        const b = this.#want <= MESSAGE_BUFFER ? Buffer.from(takeSlab()) : takeBody(this.#want);
        let at = 0;
        for (const c of this.#chunks) at += c.copy(b, at);
        this.#chunks = [];
        this.#pooled = b;
      }
    }
    if (this.#want >= 0 && this.#have > this.#want) {
      this.#chunks = [];
      return { kind: 'protocol_error', message: 'more than one request message: LogsService/Export is a unary method (one message per call)' };
    }
    return undefined;
  }

  /** At END_STREAM: the message, or an error when none or only part of one arrived. */
  end(): FramedMessage | WireError {
    if (this.#have === 0) return { kind: 'protocol_error', message: 'the request ended without a message: a unary call carries exactly one' };
    if (this.#want < 0 || this.#have < this.#want) {
      return { kind: 'protocol_error', message: `the request ended inside a message (${this.#have} of ${this.#want < 0 ? 5 : this.#want} bytes of prefix + message)` };
    }
    // Complete: push copied it into #pooled the moment the prefix gave its length — unless push
    // refused the stream (bytes after the message), and then there is no message to give.
    const pooled = this.#pooled;
    if (pooled === undefined) return { kind: 'protocol_error', message: 'more than one request message: LogsService/Export is a unary method (one message per call)' };
    this.#pooled = undefined;
    const slab = this.#want <= MESSAGE_BUFFER;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      if (slab) giveBackSlab(pooled.buffer as ArrayBuffer);
      else giveBody(pooled);
    };
    return { compressed: this.#flag === 1, data: pooled.subarray(5, this.#want), release };
  }

  /** Forgets the pooled buffer of a refused message (the garbage collector takes it). */
  #dropPooled(): void {
    this.#pooled = undefined;
  }
}

function zlibOnce(
  fn: (buf: Buffer, opts: zlib.ZlibOptions, cb: (err: Error | null, out: Buffer) => void) => void,
  data: Buffer,
  limit: number,
): Promise<{ ok: true; out: Buffer } | { ok: false; error: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    fn(data, { maxOutputLength: Math.max(1, limit) }, (err, out) => resolve(err ? { ok: false, error: err } : { ok: true, out }));
  });
}

/**
 * Decompresses one message (a fresh context per message, compression.md). zlib stops as soon as
 * the output passes `limit` (`maxOutputLength`), so memory stays near `limit` whatever the ratio
 * (no decompression bomb). gRPC "deflate" is the zlib format; raw DEFLATE is accepted too, told
 * apart by the zlib header check (RFC 1950 §2.2), as the HTTP receiver does.
 */
export async function decompressMessage(coding: 'gzip' | 'deflate', data: Buffer, limit: number, describeLimit: string): Promise<Buffer | WireError> {
  const zlibHeader = data.length >= 2 && (data[0]! & 0x0f) === 8 && ((data[0]! << 8) | data[1]!) % 31 === 0;
  const fn = coding === 'gzip' ? zlib.gunzip : zlibHeader ? zlib.inflate : zlib.inflateRaw;
  const r = await zlibOnce(fn, data, limit);
  if (r.ok) return r.out;
  if (r.error.code === 'ERR_BUFFER_TOO_LARGE') {
    return { kind: 'too_large', message: `received message that decompresses to a size larger than ${limit} bytes (${describeLimit}); send smaller batches` };
  }
  return { kind: 'protocol_error', message: `failed to decompress message (grpc-encoding ${coding}): ${r.error.message}` };
}

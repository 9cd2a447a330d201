/**
 * The OTLP/HTTP receiver's fast path: connections (plaintext, or TLS once the handshake is done)
 * whose requests have exactly the shape an OTLP exporter sends are read and answered here, without
 * node:http's request and response objects and streams; every other connection goes to node:http
 * unchanged, with the bytes read so far put back. Why: node's per-request machinery cost the agent ≈ 0.8–1.0 µs of its ≈ 3.2 µs per record
 * (docs/benchmarks.md, session 13); the 400,000 records/s leave 2.5 µs.
 *
 * What counts as that shape (parseFastHead, ChunkedBody) is deliberately narrow, so that everything a
 * general HTTP/1.1 parser must get right — several or conflicting lengths, length and chunked
 * together, chunk extensions and trailers, obs-fold, bare LF, Expect, Upgrade, compressed bodies,
 * HTTP/1.0, oversized heads — is left to llhttp:
 *
 *   POST /v1/logs HTTP/1.1 CRLF
 *   header lines (name = token, value = visible ASCII / obs-text / SP — no HTAB) CRLF
 *   exactly one Host; either exactly one Content-Length (decimal, at most max_request_body_size) or
 *   exactly one Transfer-Encoding whose value is `chunked` (and then no Content-Length);
 *   Content-Type application/x-protobuf or application/protobuf (no parameters);
 *   Connection keep-alive or absent; at most one Authorization (checked by the receiver: a request
 *   it does not accept goes to node:http, which answers 401); none of Content-Encoding, Expect,
 *   Upgrade, TE, Trailer
 *   CRLF, then exactly Content-Length body bytes, or chunks: 1–8 hex digits CRLF, that many bytes,
 *   CRLF — no extensions — ending with `0` CRLF CRLF (no trailer fields), at most MAX_FAST_CHUNKS
 *   chunks and max_request_body_size bytes of data in all.
 *
 * The OTel JS SDK's OTLP/HTTP protobuf exporter sends its bodies chunked; Content-Length senders
 * (the benchmark's load generator, most other exporters) send the first form.
 *
 * A connection is handed over for good the moment its buffered bytes are anything else, or when a
 * request has not arrived complete within FAST_GRACE_MS (a slow client is then node:http's, with its
 * read_header_timeout / read_timeout); node:http then parses from the first byte it did not see
 * answered. Requests on one connection are answered in order, one at a time (pipelined bytes wait).
 * Admission is taken when a head has been read, before its body: a request refused for overload is
 * answered 429 here after its body (at most drainLimit bytes) is read and dropped, so that an overload
 * does not move connections to the slower path for good.
 */
import type { Socket } from 'node:net';
import { giveBody, takeBody } from './body-pool.js';
import { readIntoOwnBuffer } from './own-read.js';
import { noteBytesRead } from './read-gc.js';

/** How long a started request may take to arrive complete before its connection goes to node:http. */
export const FAST_GRACE_MS = 100;

/**
 * Most chunks a chunked body may have on the fast path (an exporter sends one, or a few): each is
 * kept as a slice until the body is complete, so a body of many tiny chunks goes to node:http.
 */
export const MAX_FAST_CHUNKS = 64;

/**
 * Most connections at once whose bytes are read into a buffer of their own (own-read.ts:
 * OWN_READ_BUFFER_BYTES each, held for the connection's life, so at most 16 MiB in all); later ones are
 * read with node's per-read buffers, as TLS connections always are.
 */
export const MAX_OWN_READ_CONNECTIONS = 256;

const REQUEST_LINE = Buffer.from('POST /v1/logs HTTP/1.1\r\n', 'latin1');
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
/** Headers whose presence means the request is not the plain shape (handled by node:http). */
const NOT_FAST = new Set(['content-encoding', 'expect', 'upgrade', 'te', 'trailer']);

export type HeadVerdict =
  | {
      readonly kind: 'request';
      readonly bodyStart: number;
      /** The body's length, or -1 for a chunked body (Transfer-Encoding: chunked). */
      readonly contentLength: number;
      /** The Authorization header's value, when the request has one. */
      readonly authorization?: string;
    }
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'other' };

/** RFC 9110 §5.6.2 tchar. */
function isTchar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x21 || (c >= 0x23 && c <= 0x27) || c === 0x2a || c === 0x2b || c === 0x2d || c === 0x2e || c === 0x5e || c === 0x5f || c === 0x60 || c === 0x7c || c === 0x7e
  );
}

/**
 * Classifies the bytes at the start of `b` (a request's first byte at 0): the plain request shape
 * above ('request', with where its body starts and how long it is — the body may not have arrived
 * yet), a prefix of it ('incomplete'), or anything else ('other').
 */
export function parseFastHead(b: Buffer, maxHeadBytes: number, maxBody: number): HeadVerdict {
  const n = Math.min(b.length, REQUEST_LINE.length);
  for (let i = 0; i < n; i++) if (b[i] !== REQUEST_LINE[i]) return { kind: 'other' };
  const end = b.indexOf(CRLFCRLF, REQUEST_LINE.length - 2);
  if (end < 0) {
    if (b.length > maxHeadBytes) return { kind: 'other' };
    // A line ended by a bare LF (or a CR without its LF) can never become this shape: do not wait for it.
    for (let i = REQUEST_LINE.length; i < b.length; i++) {
      if (b[i] === 0x0a && b[i - 1] !== 0x0d) return { kind: 'other' };
      if (b[i] === 0x0d && i + 1 < b.length && b[i + 1] !== 0x0a) return { kind: 'other' };
    }
    return { kind: 'incomplete' };
  }
  if (end + 4 > maxHeadBytes) return { kind: 'other' };
  let contentLength = -1;
  let chunked = false;
  let authorization: string | undefined;
  let hosts = 0;
  let protobuf = false;
  // Header lines lie in [REQUEST_LINE.length, end), each ending at a CRLF (the last one at `end`).
  for (let p = REQUEST_LINE.length; p < end + 2; ) {
    const eol = b.indexOf(0x0d, p);
    if (eol < 0 || eol > end || b[eol + 1] !== 0x0a) return { kind: 'other' };
    let colon = p;
    while (colon < eol && isTchar(b[colon]!)) colon++;
    if (colon === p || colon === eol || b[colon] !== 0x3a) return { kind: 'other' }; // no name, no colon, or whitespace before it (and obs-fold)
    for (let i = colon + 1; i < eol; i++) {
      // Control characters, and HTAB too: llhttp refuses a tab after a Content-Length or
      // Transfer-Encoding value that a trim would accept (found by test/fuzz/http.test.ts); exporters
      // send none, so a tab anywhere hands the request to node:http.
      const c = b[i]!;
      if (c < 0x20 || c === 0x7f) return { kind: 'other' };
    }
    const name = b.toString('latin1', p, colon).toLowerCase();
    const value = b.toString('latin1', colon + 1, eol).replace(/^ +| +$/g, '');
    if (NOT_FAST.has(name)) return { kind: 'other' };
    if (name === 'content-length') {
      if (contentLength >= 0 || !/^[0-9]{1,15}$/.test(value)) return { kind: 'other' };
      contentLength = Number(value);
      if (contentLength > maxBody) return { kind: 'other' };
    } else if (name === 'transfer-encoding') {
      if (chunked || value.toLowerCase() !== 'chunked') return { kind: 'other' };
      chunked = true;
    } else if (name === 'authorization') {
      if (authorization !== undefined) return { kind: 'other' };
      authorization = value;
    } else if (name === 'host') {
      hosts++;
    } else if (name === 'content-type') {
      const v = value.toLowerCase();
      if (protobuf || (v !== 'application/x-protobuf' && v !== 'application/protobuf')) return { kind: 'other' };
      protobuf = true;
    } else if (name === 'connection') {
      if (value.toLowerCase() !== 'keep-alive') return { kind: 'other' };
    }
    p = eol + 2;
  }
  // Exactly one framing: a length, or chunked (both together is the classic smuggling shape).
  if (chunked === contentLength >= 0 || hosts !== 1 || !protobuf) return { kind: 'other' };
  const bodyStart = end + 4;
  return authorization === undefined ? { kind: 'request', bodyStart, contentLength } : { kind: 'request', bodyStart, contentLength, authorization };
}

/** What a chunked body's bytes so far amount to (ChunkedBody.feed). */
export type ChunkedVerdict =
  | { readonly kind: 'more' }
  /** The last chunk's final CRLF ends at `end` (exclusive) in the buffer just fed. */
  | { readonly kind: 'done'; readonly end: number }
  /** Not the strict form above, more than MAX_FAST_CHUNKS chunks, or more data than allowed. */
  | { readonly kind: 'other' };

const CR = 0x0d;
const LF = 0x0a;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

const enum Chunk {
  SizeFirst,
  Size,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  EndCr,
  EndLf,
  Done,
}

/**
 * Reads a chunked body in the strict form above, from bytes as they arrive: the data is kept as
 * slices of the buffers fed (no copy until `body()`), at most `limit` bytes of it. Anything outside
 * that form is 'other' — the connection then goes to node:http with every byte of the request.
 */
export class ChunkedBody {
  readonly #limit: number;
  readonly #keep: boolean;
  #state = Chunk.SizeFirst;
  #size = 0;
  #digits = 0;
  #left = 0;
  #chunks = 0;
  #total = 0;
  readonly #slices: Buffer[] = [];

  /** `keep` false: the data is only counted (a refused request's body, read to be dropped). */
  constructor(limit: number, keep = true) {
    this.#limit = limit;
    this.#keep = keep;
  }

  /** Bytes of data so far. */
  get length(): number {
    return this.#total;
  }

  /** Reads `b` from `from` on; after 'done' or 'other' it must not be fed again. */
  feed(b: Buffer, from: number): ChunkedVerdict {
    let i = from;
    while (i < b.length) {
      const c = b[i]!;
      switch (this.#state) {
        case Chunk.SizeFirst:
        case Chunk.Size: {
          const h = hexValue(c);
          if (h >= 0) {
            if (++this.#digits > 8) return { kind: 'other' };
            this.#size = this.#size * 16 + h;
            this.#state = Chunk.Size;
          } else if (c === CR && this.#state === Chunk.Size) {
            this.#state = Chunk.SizeLf;
          } else {
            return { kind: 'other' }; // extensions (;), white space, a sign, no digits at all
          }
          i++;
          break;
        }
        case Chunk.SizeLf:
          if (c !== LF) return { kind: 'other' };
          i++;
          if (this.#size === 0) {
            this.#state = Chunk.EndCr;
            break;
          }
          this.#total += this.#size;
          if (++this.#chunks > MAX_FAST_CHUNKS || this.#total > this.#limit) return { kind: 'other' };
          this.#left = this.#size;
          this.#state = Chunk.Data;
          break;
        case Chunk.Data: {
          const n = Math.min(this.#left, b.length - i);
          if (this.#keep) this.#slices.push(b.subarray(i, i + n));
          i += n;
          this.#left -= n;
          if (this.#left === 0) this.#state = Chunk.DataCr;
          break;
        }
        case Chunk.DataCr:
        case Chunk.EndCr:
          if (c !== CR) return { kind: 'other' }; // after the last chunk: a trailer field
          this.#state = this.#state === Chunk.DataCr ? Chunk.DataLf : Chunk.EndLf;
          i++;
          break;
        case Chunk.DataLf:
          if (c !== LF) return { kind: 'other' };
          this.#state = Chunk.SizeFirst;
          this.#size = 0;
          this.#digits = 0;
          i++;
          break;
        case Chunk.EndLf:
          if (c !== LF) return { kind: 'other' };
          this.#state = Chunk.Done;
          return { kind: 'done', end: i + 1 };
        case Chunk.Done:
          return { kind: 'other' };
      }
    }
    return { kind: 'more' };
  }

  /**
   * The whole body once 'done': the one slice itself when it came in one piece (the usual case), else
   * the slices copied into a body-pool buffer (`pooled`, to be given back).
   */
  body(): { body: Buffer; pooled: Buffer | undefined } {
    if (this.#slices.length === 0) return { body: Buffer.alloc(0), pooled: undefined };
    if (this.#slices.length === 1) return { body: this.#slices[0]!, pooled: undefined };
    const pooled = takeBody(this.#total);
    let at = 0;
    for (const s of this.#slices) at += s.copy(pooled, at);
    return { body: pooled.subarray(0, this.#total), pooled };
  }
}

/** What the receiver lends the fast path. */
export interface FastPathHost {
  /**
   * Admission (the receiver's max_concurrent_requests gate), taken when a request's head is read and
   * before its body is: a release function, or undefined when every slot is taken — the request is then
   * refused with `overloaded()` (bodies up to drainLimit) or its connection goes to node:http.
   */
  admit(): (() => void) | undefined;
  /** The whole 429 response for a request refused admission (counted as node:http's path counts it). */
  overloaded(): Uint8Array;
  /**
   * Largest body (declared or chunked) of a refused request that is read and discarded so that its
   * connection stays (node's path does the same for a declared length); a larger one goes to node:http,
   * which answers and closes.
   */
  readonly drainLimit: number;
  /**
   * Authentication from the request's Authorization value (undefined: none sent), before admission
   * and before the body is read: the client's name for the logs (undefined without auth or a name),
   * or false when the receiver does not accept the request — it then goes to node:http, which answers
   * 401 exactly as for any other connection.
   */
  authenticate(authorization: string | undefined, socket: Socket): { readonly client: string | undefined } | false;
  /** Answers one complete request body (a buffer it must not keep once it resolves): the whole HTTP response. */
  answer(body: Buffer, client: string | undefined): Promise<Uint8Array>;
  /** Gives the connection to node:http (the bytes it has not answered are already put back). */
  handOver(socket: Socket): void;
  /** False while the receiver is stopping: new requests go to node:http, which refuses them. */
  accepting(): boolean;
  /** A new connection sent nothing within read_header_timeout: answered as node:http would (408). */
  headerTimeout(socket: Socket): void;
  readonly maxHeadBytes: number;
  readonly maxBody: number;
  readonly readHeaderTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** Connections the fast path holds, for shutdown. */
export class FastPath {
  readonly #host: FastPathHost;
  readonly #conns = new Set<FastConnection>();
  /** Open connections (on the fast path or handed over) that hold a read buffer of their own. */
  #ownReads = 0;

  constructor(host: FastPathHost) {
    this.#host = host;
  }

  /** Takes a new connection (a TLS one after its handshake). */
  adopt(socket: Socket): void {
    const own = this.#ownReads < MAX_OWN_READ_CONNECTIONS;
    const c = new FastConnection(socket, this.#host, () => this.#conns.delete(c), own);
    this.#conns.add(c);
    if (c.readsOwnBuffer) {
      this.#ownReads++;
      socket.once('close', () => this.#ownReads--);
    }
  }

  /** Open connections that read into a buffer of their own (tests, diagnostics). */
  ownReadConnections(): number {
    return this.#ownReads;
  }

  /** Closes the connections that are between requests (shutdown). */
  closeIdle(): void {
    for (const c of this.#conns) c.closeIfIdle();
  }

  /** Closes every connection it holds (shutdown, after the grace period). */
  closeAll(): void {
    for (const c of this.#conns) c.destroy();
  }
}

/** The body of the request being read: its head (for a hand-over), the pooled buffer it goes into, admission. */
interface Filling {
  readonly head: Buffer;
  readonly pooled: Buffer;
  readonly length: number;
  got: number;
  readonly release: () => void;
  readonly client: string | undefined;
}

/**
 * A chunked body being read: every buffer read for the request from its first byte (for a
 * hand-over), the decoder, and admission — undefined when the request was refused admission and its
 * body is read to be dropped.
 */
interface ChunkedFilling {
  readonly raw: Buffer[];
  readonly dec: ChunkedBody;
  readonly release: (() => void) | undefined;
  readonly client: string | undefined;
}

/** Most reads one chunked request may take on the fast path (each is kept until the request is complete). */
const MAX_CHUNKED_READS = 1024;

class FastConnection {
  readonly #socket: Socket;
  readonly #host: FastPathHost;
  readonly #done: () => void;
  /** The start of a request whose head is not complete yet (at most maxHeadBytes). */
  #head: Buffer | undefined;
  /** The request whose body is arriving. */
  #body: Filling | undefined;
  /** The request whose chunked body is arriving. */
  #chunked: ChunkedFilling | undefined;
  /** A request refused admission whose body is read and dropped: bytes still to drop. */
  #drain = 0;
  /** A request is being answered: the socket is paused and later bytes wait in the kernel. */
  #busy = false;
  /** A request has started (bytes arrived) and its grace period runs. */
  #started = false;
  #ended = false;
  #timer: NodeJS.Timeout | undefined;
  /**
   * The memory of the connection's own read buffer while the fast path reads it (own-read.ts):
   * bytes in it are overwritten by the next read, so whatever is kept across reads is copied
   * (#keep). Undefined when the connection is read with node's per-read buffers, and after a hand-over.
   */
  #own: ArrayBufferLike | undefined;
  /** Whether the socket's reads go into a buffer of its own (for its whole life, also after a hand-over). */
  readonly readsOwnBuffer: boolean;
  readonly #onData = (d: Buffer): void => {
    noteBytesRead(d.length);
    this.#feed(d);
  };
  /** A read into the connection's own buffer: fed on the fast path, or passed to node:http after a hand-over. */
  readonly #onOwnRead = (n: number, b: Buffer): boolean => {
    if (this.#own !== undefined) {
      this.#feed(b.subarray(0, n));
      return true;
    }
    // Handed over, and node:http does not read the handle itself (it normally does: its parser then
    // takes the reads and this is not called): give it a copy, as node's own reads would.
    noteBytesRead(n);
    return this.#socket.push(Buffer.from(b.subarray(0, n)));
  };
  readonly #onEnd = (): void => this.#end();
  readonly #onClose = (): void => this.#close();
  readonly #onError = (): void => undefined; // 'close' follows

  constructor(socket: Socket, host: FastPathHost, done: () => void, ownRead: boolean) {
    this.#socket = socket;
    this.#host = host;
    this.#done = done;
    socket.setNoDelay(true);
    // Only the buffer's memory is kept here (#keep compares with it); the socket holds the buffer.
    this.#own = ownRead ? readIntoOwnBuffer(socket, this.#onOwnRead)?.buffer : undefined;
    this.readsOwnBuffer = this.#own !== undefined;
    // Still listened to with an own buffer: bytes put back with unshift arrive as 'data'.
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    socket.on('error', this.#onError);
    this.#arm(host.readHeaderTimeoutMs, () => host.headerTimeout(this.#detach()));
  }

  #arm(ms: number, fn: () => void): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(fn, ms);
    this.#timer.unref();
  }

  /** Bytes from the client (never while a request is answered: the socket is paused then). */
  #feed(d: Buffer): void {
    if (d.length === 0) return;
    if (!this.#started) {
      // The request's first bytes: it has FAST_GRACE_MS to arrive complete, counted once, from here.
      this.#started = true;
      this.#arm(FAST_GRACE_MS, () => (this.#draining() ? this.destroy() : this.#handOver(undefined)));
    }
    if (this.#drain > 0) {
      const n = Math.min(this.#drain, d.length);
      this.#drain -= n;
      if (this.#drain === 0) this.#refused(n < d.length ? d.subarray(n) : undefined);
      return;
    }
    const f = this.#body;
    if (f !== undefined) {
      const n = Math.min(f.length - f.got, d.length);
      d.copy(f.pooled, f.got, 0, n);
      f.got += n;
      if (f.got === f.length) this.#answer(f.pooled.subarray(0, f.length), f.pooled, f.release, f.client, n < d.length ? d.subarray(n) : undefined);
      return;
    }
    const k = this.#chunked;
    if (k !== undefined) {
      const kept = this.#keep(d);
      k.raw.push(kept);
      this.#readChunked(k, kept, 0);
      return;
    }
    const h = this.#head === undefined ? d : Buffer.concat([this.#head, d]);
    this.#head = undefined;
    const v = this.#host.accepting() ? parseFastHead(h, this.#host.maxHeadBytes, this.#host.maxBody) : ({ kind: 'other' } as const);
    if (v.kind === 'other') {
      this.#handOver(h);
      return;
    }
    if (v.kind === 'incomplete') {
      this.#head = this.#keep(h);
      if (this.#ended) this.#handOver(undefined);
      return;
    }
    const who = this.#host.authenticate(v.authorization, this.#socket);
    if (who === false) {
      this.#handOver(h);
      return;
    }
    const release = this.#host.admit();
    if (v.contentLength < 0) {
      if (release === undefined && this.#host.drainLimit === 0) {
        this.#handOver(h);
        return;
      }
      const kept = this.#keep(h);
      const c: ChunkedFilling = {
        raw: [kept],
        dec: release === undefined ? new ChunkedBody(this.#host.drainLimit, false) : new ChunkedBody(this.#host.maxBody),
        release,
        client: who.client,
      };
      this.#chunked = c;
      this.#readChunked(c, kept, v.bodyStart);
      return;
    }
    if (release === undefined) {
      if (v.contentLength > this.#host.drainLimit) {
        this.#handOver(h);
        return;
      }
      const n = Math.min(v.contentLength, h.length - v.bodyStart);
      this.#drain = v.contentLength - n;
      if (this.#drain === 0) this.#refused(v.bodyStart + n < h.length ? h.subarray(v.bodyStart + n) : undefined);
      else if (this.#ended) this.destroy();
      return;
    }
    const end = v.bodyStart + v.contentLength;
    if (end <= h.length) {
      // The whole body came with the head (the usual case): answered from the read itself, as node's
      // path answers a body read in one piece; the decoder copies what it keeps. From an own read
      // buffer too: #answer pauses the socket, so no read overwrites the body (or `rest`) before finish.
      this.#answer(h.subarray(v.bodyStart, end), undefined, release, who.client, end < h.length ? h.subarray(end) : undefined);
      return;
    }
    const pooled = takeBody(v.contentLength);
    const n = h.length - v.bodyStart;
    h.copy(pooled, 0, v.bodyStart, h.length);
    this.#body = { head: this.#keep(h.subarray(0, v.bodyStart)), pooled, length: v.contentLength, got: n, release, client: who.client };
    if (this.#ended) this.#handOver(undefined);
  }

  /** Reads the chunked body of `c` on in `b` (from `from`): answers it once complete, hands over anything else. */
  #readChunked(c: ChunkedFilling, b: Buffer, from: number): void {
    const r = c.dec.feed(b, from);
    if (r.kind === 'more') {
      if (c.raw.length > MAX_CHUNKED_READS) this.#handOver(undefined);
      else if (this.#ended) {
        if (c.release === undefined) this.destroy();
        else this.#handOver(undefined);
      }
      return;
    }
    if (r.kind === 'other') {
      this.#handOver(undefined);
      return;
    }
    this.#chunked = undefined;
    const rest = r.end < b.length ? b.subarray(r.end) : undefined;
    if (c.release === undefined) {
      this.#refused(rest);
      return;
    }
    const { body, pooled } = c.dec.body();
    this.#answer(body, pooled, c.release, c.client, rest);
  }

  /** `b` itself, or a copy when it lies in the own read buffer (which the next read overwrites). */
  #keep(b: Buffer): Buffer {
    return this.#own !== undefined && b.buffer === this.#own ? Buffer.from(b) : b;
  }

  /** A refused request's body is being read to be dropped. */
  #draining(): boolean {
    return this.#drain > 0 || (this.#chunked !== undefined && this.#chunked.release === undefined);
  }

  /**
   * Answers a complete request whose body is `body` (inside `pooled` when it was gathered from several
   * reads; given back afterwards); `rest` (bytes after it, pipelined) is read once the answer is written.
   */
  #answer(body: Buffer, pooled: Buffer | undefined, release: () => void, client: string | undefined, rest: Buffer | undefined): void {
    clearTimeout(this.#timer);
    this.#body = undefined;
    this.#started = false;
    this.#busy = true;
    this.#socket.pause();
    const finish = (response: Uint8Array | undefined): void => {
      if (pooled !== undefined) giveBody(pooled);
      release();
      this.#busy = false;
      if (response === undefined || this.#socket.destroyed) {
        this.destroy();
        return;
      }
      this.#socket.write(response);
      if (rest !== undefined) this.#feed(rest);
      else this.#idle();
      if (!this.#busy && !this.#socket.destroyed && this.#socket.isPaused()) this.#socket.resume();
    };
    this.#host.answer(body, client).then(finish, () => finish(undefined));
  }

  /** The request refused admission has been read: answer 429, then go on with `rest`. */
  #refused(rest: Buffer | undefined): void {
    clearTimeout(this.#timer);
    this.#started = false;
    this.#socket.write(this.#host.overloaded());
    if (rest !== undefined) this.#feed(rest);
    else this.#idle();
  }

  /** Between requests: close after idle_timeout (or at once when the client has ended its side). */
  #idle(): void {
    if (this.#ended) this.#socket.end();
    else this.#arm(this.#host.idleTimeoutMs, () => this.destroy());
  }

  #end(): void {
    this.#ended = true;
    if (this.#busy) return; // closed after the answer (#idle), or handed over with what follows it
    if (this.#draining()) this.destroy();
    else if (this.#head !== undefined || this.#body !== undefined || this.#chunked !== undefined) this.#handOver(undefined);
    else this.#idle();
  }

  #close(): void {
    clearTimeout(this.#timer);
    const f = this.#body;
    this.#body = undefined;
    if (f !== undefined) {
      giveBody(f.pooled);
      f.release();
    }
    const c = this.#chunked;
    this.#chunked = undefined;
    c?.release?.();
    this.#done();
  }

  /** Stops listening to the socket (reads into its own buffer are passed on from now, #onOwnRead); returns it. */
  #detach(): Socket {
    clearTimeout(this.#timer);
    this.#own = undefined;
    const s = this.#socket;
    s.off('data', this.#onData);
    s.off('end', this.#onEnd);
    s.off('close', this.#onClose);
    s.off('error', this.#onError);
    this.#done();
    return s;
  }

  /**
   * Gives the connection to node:http with every byte of the unanswered request put back: `bytes`
   * when given, else the started head, the head and body read so far, or every read of a chunked one.
   */
  #handOver(bytes: Buffer | undefined): void {
    let back = bytes !== undefined ? this.#keep(bytes) : this.#head;
    const f = this.#body;
    if (bytes === undefined && f !== undefined) {
      back = Buffer.concat([f.head, f.pooled.subarray(0, f.got)]);
      giveBody(f.pooled);
      f.release();
    }
    const c = this.#chunked;
    if (bytes === undefined && c !== undefined) {
      back = Buffer.concat(c.raw);
      c.release?.();
    }
    this.#head = undefined;
    this.#body = undefined;
    this.#chunked = undefined;
    const s = this.#detach();
    if (back !== undefined && back.length > 0) s.unshift(back);
    if (s.isPaused()) s.resume();
    this.#host.handOver(s);
  }

  closeIfIdle(): void {
    if (!this.#busy && !this.#started) this.destroy();
  }

  destroy(): void {
    clearTimeout(this.#timer);
    this.#socket.destroy();
  }
}

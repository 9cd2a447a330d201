/**
 * The OTLP/HTTP receiver's fast path: plain-HTTP connections whose requests have exactly the shape an
 * OTLP exporter sends are read and answered here, without node:http's request and response objects
 * and streams; every other connection goes to node:http unchanged, with the bytes read so far put
 * back. Why: node's per-request machinery cost the agent ≈ 0.8–1.0 µs of its ≈ 3.2 µs per record
 * (docs/benchmarks.md, session 13); the 400,000 records/s leave 2.5 µs.
 *
 * What counts as that shape (parseFastHead) is deliberately narrow, so that everything a general
 * HTTP/1.1 parser must get right — chunked bodies, several or conflicting lengths, obs-fold, bare LF,
 * Expect, Upgrade, compressed bodies, credentials, HTTP/1.0, oversized heads — is left to llhttp:
 *
 *   POST /v1/logs HTTP/1.1 CRLF
 *   header lines (name = token, value = visible ASCII / obs-text / SP / HTAB) CRLF
 *   exactly one Host, exactly one Content-Length (decimal, at most max_request_body_size),
 *   Content-Type application/x-protobuf or application/protobuf (no parameters),
 *   Connection keep-alive or absent, and none of Transfer-Encoding, Content-Encoding, Expect,
 *   Upgrade, Authorization, TE, Trailer
 *   CRLF, then exactly Content-Length body bytes.
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
import { noteBytesRead } from './read-gc.js';

/** How long a started request may take to arrive complete before its connection goes to node:http. */
export const FAST_GRACE_MS = 100;

const REQUEST_LINE = Buffer.from('POST /v1/logs HTTP/1.1\r\n', 'latin1');
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
/** Headers whose presence means the request is not the plain shape (handled by node:http). */
const NOT_FAST = new Set(['transfer-encoding', 'content-encoding', 'expect', 'upgrade', 'authorization', 'te', 'trailer']);

export type HeadVerdict =
  | { readonly kind: 'request'; readonly bodyStart: number; readonly contentLength: number }
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
      const c = b[i]!;
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) return { kind: 'other' };
    }
    const name = b.toString('latin1', p, colon).toLowerCase();
    const value = b.toString('latin1', colon + 1, eol).replace(/^[ \t]+|[ \t]+$/g, '');
    if (NOT_FAST.has(name)) return { kind: 'other' };
    if (name === 'content-length') {
      if (contentLength >= 0 || !/^[0-9]{1,15}$/.test(value)) return { kind: 'other' };
      contentLength = Number(value);
      if (contentLength > maxBody) return { kind: 'other' };
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
  if (contentLength < 0 || hosts !== 1 || !protobuf) return { kind: 'other' };
  return { kind: 'request', bodyStart: end + 4, contentLength };
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
   * Largest body of a refused request that is read and discarded so that its connection stays (node's
   * path does the same); a larger one goes to node:http, which answers and closes.
   */
  readonly drainLimit: number;
  /** Answers one complete request body (a buffer it must not keep once it resolves): the whole HTTP response. */
  answer(body: Buffer): Promise<Uint8Array>;
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

  constructor(host: FastPathHost) {
    this.#host = host;
  }

  /** Takes a new plain connection. */
  adopt(socket: Socket): void {
    const c = new FastConnection(socket, this.#host, () => this.#conns.delete(c));
    this.#conns.add(c);
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
}

class FastConnection {
  readonly #socket: Socket;
  readonly #host: FastPathHost;
  readonly #done: () => void;
  /** The start of a request whose head is not complete yet (at most maxHeadBytes). */
  #head: Buffer | undefined;
  /** The request whose body is arriving. */
  #body: Filling | undefined;
  /** A request refused admission whose body is read and dropped: bytes still to drop. */
  #drain = 0;
  /** A request is being answered: the socket is paused and later bytes wait in the kernel. */
  #busy = false;
  /** A request has started (bytes arrived) and its grace period runs. */
  #started = false;
  #ended = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #onData = (d: Buffer): void => {
    noteBytesRead(d.length);
    this.#feed(d);
  };
  readonly #onEnd = (): void => this.#end();
  readonly #onClose = (): void => this.#close();
  readonly #onError = (): void => undefined; // 'close' follows

  constructor(socket: Socket, host: FastPathHost, done: () => void) {
    this.#socket = socket;
    this.#host = host;
    this.#done = done;
    socket.setNoDelay(true);
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
      this.#arm(FAST_GRACE_MS, () => (this.#drain > 0 ? this.destroy() : this.#handOver(undefined)));
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
      if (f.got === f.length) this.#answer(f.pooled.subarray(0, f.length), f.pooled, f.release, n < d.length ? d.subarray(n) : undefined);
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
      this.#head = h;
      if (this.#ended) this.#handOver(undefined);
      return;
    }
    const release = this.#host.admit();
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
      // path answers a body read in one piece; the decoder copies what it keeps.
      this.#answer(h.subarray(v.bodyStart, end), undefined, release, end < h.length ? h.subarray(end) : undefined);
      return;
    }
    const pooled = takeBody(v.contentLength);
    const n = h.length - v.bodyStart;
    h.copy(pooled, 0, v.bodyStart, h.length);
    this.#body = { head: h.subarray(0, v.bodyStart), pooled, length: v.contentLength, got: n, release };
    if (this.#ended) this.#handOver(undefined);
  }

  /**
   * Answers a complete request whose body is `body` (inside `pooled` when it was gathered from several
   * reads; given back afterwards); `rest` (bytes after it, pipelined) is read once the answer is written.
   */
  #answer(body: Buffer, pooled: Buffer | undefined, release: () => void, rest: Buffer | undefined): void {
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
    this.#host.answer(body).then(finish, () => finish(undefined));
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
    if (this.#drain > 0) this.destroy();
    else if (this.#head !== undefined || this.#body !== undefined) this.#handOver(undefined);
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
    this.#done();
  }

  /** Stops listening to the socket; returns it. */
  #detach(): Socket {
    clearTimeout(this.#timer);
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
   * when given, else the started head or the head and body read so far.
   */
  #handOver(bytes: Buffer | undefined): void {
    let back = bytes ?? this.#head;
    const f = this.#body;
    if (bytes === undefined && f !== undefined) {
      back = Buffer.concat([f.head, f.pooled.subarray(0, f.got)]);
      giveBody(f.pooled);
      f.release();
    }
    this.#head = undefined;
    this.#body = undefined;
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

/**
 * Lean OTLP clients for the load generator. They exist because the usual clients saturate before the
 * agent does on this 2-core machine (/work/shared/recipes/node-here.md: a @grpc/grpc-js client tops out
 * at 6–9k calls/s): requests are pre-built byte buffers, written as they are, and responses are
 * parsed only as far as needed to know the status.
 *
 * - OTLP/HTTP: HTTP/1.1 over raw keep-alive TCP sockets, one request in flight per connection (no
 *   pipelining), like autocannon. A response is complete after Content-Length bytes (or the last
 *   chunk of a chunked body).
 * - OTLP/gRPC: node:http2 speaking gRPC framing (gRPC over HTTP/2 spec: `content-type:
 *   application/grpc`, `te: trailers`, 5-byte length prefix); the call's outcome is `grpc-status`
 *   from the trailers (or from the headers of a trailers-only response).
 */
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { GRPC_EXPORT_PATH, grpcFrame } from './payloads.js';

export type Transport = 'http-protobuf' | 'http-json' | 'grpc';
export const TRANSPORTS: readonly Transport[] = ['http-protobuf', 'http-json', 'grpc'];

/** Called once per request: a status key such as "http 200", "grpc 0" or "error ECONNRESET". */
export type Done = (status: string, ok: boolean) => void;

export interface OtlpClient {
  /** Issue one request with pre-built payload number `i`; `done` is called exactly once. */
  request(i: number, done: Done): void;
  /** Open `n` connections ahead of time (so connection set-up is not in the measured window). */
  warm(n: number): Promise<void>;
  close(): void;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const CHUNK_END = Buffer.from('0\r\n\r\n');

/** One keep-alive HTTP/1.1 connection with at most one request in flight. */
class HttpConnection {
  readonly socket: net.Socket;
  #done: Done | undefined;
  #head: Buffer | undefined;
  #need = -1; // body bytes still expected; -1 = reading headers; -2 = chunked
  #chunkTail: Buffer | undefined;
  #status = 0;
  #closeAfter = false;
  dead = false;
  readonly connected: Promise<void>;

  /** `tlsCa`: speak TLS, trusting this CA (PEM) for the name "localhost". */
  constructor(host: string, port: number, onIdle: (c: HttpConnection) => void, onDead: (c: HttpConnection) => void, tlsCa?: string) {
    this.socket = tlsCa === undefined ? net.connect({ host, port, noDelay: true }) : tls.connect({ host, port, ca: tlsCa, servername: 'localhost' });
    if (tlsCa !== undefined) this.socket.setNoDelay(true);
    this.connected = new Promise((resolve, reject) => {
      this.socket.once(tlsCa === undefined ? 'connect' : 'secureConnect', () => resolve());
      this.socket.once('error', reject);
    });
    this.connected.catch(() => undefined);
    this.socket.on('data', (chunk: Buffer) => this.#onData(chunk, onIdle));
    const fail = (code: string): void => {
      if (this.dead) return;
      this.dead = true;
      onDead(this);
      const d = this.#done;
      this.#done = undefined;
      d?.(`error ${code}`, false);
    };
    this.socket.on('error', (e: NodeJS.ErrnoException) => fail(e.code ?? 'socket'));
    this.socket.on('close', () => fail('closed'));
  }

  send(bytes: Buffer, done: Done): void {
    this.#done = done;
    this.#head = undefined;
    this.#need = -1;
    this.socket.write(bytes);
  }

  #onData(chunk: Buffer, onIdle: (c: HttpConnection) => void): void {
    if (this.#need === -1) {
      this.#head = this.#head ? Buffer.concat([this.#head, chunk]) : chunk;
      const end = this.#head.indexOf(CRLF2);
      if (end < 0) return;
      const text = this.#head.toString('latin1', 0, end);
      const rest = this.#head.subarray(end + 4);
      this.#head = undefined;
      this.#status = Number(text.slice(9, 12));
      const lower = text.toLowerCase();
      this.#closeAfter = lower.includes('\r\nconnection: close');
      const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
      if (cl) {
        this.#need = Number(cl[1]) - rest.length;
      } else if (lower.includes('\r\ntransfer-encoding: chunked')) {
        this.#need = -2;
        this.#chunkTail = Buffer.alloc(0);
        chunk = rest;
      } else {
        this.#need = 0; // no body (e.g. 204)
      }
    } else if (this.#need > 0) {
      this.#need -= chunk.length;
    }
    if (this.#need === -2) {
      // Chunked: done when the stream ends with the last-chunk marker "0\r\n\r\n" (RFC 9112 §7.1).
      this.#chunkTail = Buffer.concat([this.#chunkTail!, chunk]).subarray(-5);
      if (this.#chunkTail.length < 5 || !this.#chunkTail.equals(CHUNK_END)) return;
      this.#need = 0;
    }
    if (this.#need !== 0) return;
    const d = this.#done;
    this.#done = undefined;
    this.#need = -1;
    const status = this.#status;
    if (this.#closeAfter) this.socket.destroy();
    else onIdle(this);
    d?.(`http ${status}`, status === 200);
  }

  close(): void {
    this.dead = true;
    this.socket.destroy();
  }
}

/** OTLP/HTTP client over a growing pool of keep-alive connections. */
export class HttpClient implements OtlpClient {
  readonly #host: string;
  readonly #port: number;
  readonly #requests: Buffer[];
  readonly #idle: HttpConnection[] = [];
  readonly #all = new Set<HttpConnection>();
  readonly #tlsCa: string | undefined;

  /**
   * `chunked`: each body is sent as one chunk (`Transfer-Encoding: chunked`), the way the OTel JS
   * SDK's exporter frames it, instead of with a Content-Length. `tlsCa`: connections speak TLS,
   * trusting this CA (PEM) for the server name "localhost".
   */
  constructor(host: string, port: number, contentType: string, bodies: readonly Uint8Array[], o: { readonly chunked?: boolean; readonly tlsCa?: string } = {}) {
    const chunked = o.chunked === true;
    this.#tlsCa = o.tlsCa;
    this.#host = host;
    this.#port = port;
    this.#requests = bodies.map((b) => {
      const head = `POST /v1/logs HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: ${contentType}\r\n`;
      if (!chunked) return Buffer.concat([Buffer.from(`${head}Content-Length: ${b.length}\r\n\r\n`, 'latin1'), b]);
      return Buffer.concat([Buffer.from(`${head}Transfer-Encoding: chunked\r\n\r\n${b.length.toString(16)}\r\n`, 'latin1'), b, Buffer.from('\r\n0\r\n\r\n', 'latin1')]);
    });
  }

  #connect(): HttpConnection {
    const c = new HttpConnection(
      this.#host,
      this.#port,
      (conn) => this.#idle.push(conn),
      (conn) => {
        this.#all.delete(conn);
        const i = this.#idle.indexOf(conn);
        if (i >= 0) this.#idle.splice(i, 1);
      },
      this.#tlsCa,
    );
    this.#all.add(c);
    return c;
  }

  async warm(n: number): Promise<void> {
    const fresh: HttpConnection[] = [];
    while (this.#all.size < n) fresh.push(this.#connect());
    await Promise.all(fresh.map((c) => c.connected));
    this.#idle.push(...fresh);
  }

  request(i: number, done: Done): void {
    let c = this.#idle.pop();
    while (c?.dead) c = this.#idle.pop();
    c ??= this.#connect();
    c.send(this.#requests[i % this.#requests.length]!, done);
  }

  close(): void {
    for (const c of this.#all) c.close();
    this.#all.clear();
    this.#idle.length = 0;
  }
}

/** OTLP/gRPC client: node:http2 sessions, requests spread round-robin, one stream per call. */
export class GrpcClient implements OtlpClient {
  readonly #url: string;
  readonly #host: string;
  readonly #port: number;
  readonly #frames: Buffer[];
  #sessions: http2.ClientHttp2Session[] = [];
  #next = 0;

  constructor(host: string, port: number, messages: readonly Uint8Array[]) {
    this.#url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.#host = host;
    this.#port = port;
    this.#frames = messages.map((m) => grpcFrame(m));
  }

  async warm(n: number): Promise<void> {
    while (this.#sessions.length < n) {
      const s = http2.connect(this.#url, {
        settings: { initialWindowSize: 8 * 1024 * 1024 },
        // TCP_NODELAY as grpc-js does: small frames behind Nagle's algorithm wait for a delayed ACK.
        createConnection: () => net.connect({ host: this.#host, port: this.#port, noDelay: true }),
      });
      s.on('error', () => undefined); // each stream reports its own failure
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('error', reject);
      });
      s.setLocalWindowSize(32 * 1024 * 1024);
      this.#sessions.push(s);
    }
  }

  request(i: number, done: Done): void {
    let s = this.#sessions[this.#next++ % this.#sessions.length];
    if (!s || s.destroyed || s.closed) {
      this.#sessions = this.#sessions.filter((x) => !x.destroyed && !x.closed);
      if (this.#sessions.length === 0) {
        done('error no-session', false);
        return;
      }
      s = this.#sessions[0]!;
    }
    let grpcStatus: string | undefined;
    let httpStatus = 0;
    let finished = false;
    const finish = (key: string, ok: boolean): void => {
      if (finished) return;
      finished = true;
      done(key, ok);
    };
    const stream = s.request({
      ':method': 'POST',
      ':path': GRPC_EXPORT_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.on('response', (h) => {
      httpStatus = Number(h[':status']);
      const gs = h['grpc-status']; // trailers-only response
      if (gs !== undefined) grpcStatus = String(gs);
    });
    stream.on('trailers', (t) => {
      const gs = t['grpc-status'];
      if (gs !== undefined) grpcStatus = String(gs);
    });
    stream.on('data', () => undefined);
    stream.on('error', (e: NodeJS.ErrnoException) => finish(`error ${e.code ?? 'stream'}`, false));
    stream.on('close', () => {
      if (grpcStatus !== undefined) finish(`grpc ${grpcStatus}`, grpcStatus === '0');
      else finish(`error http2 status ${httpStatus} without grpc-status`, false);
    });
    stream.end(this.#frames[i % this.#frames.length]);
  }

  close(): void {
    for (const s of this.#sessions) s.destroy();
    this.#sessions = [];
  }
}

/**
 * Reading an accepted plain TCP connection into one buffer of its own instead of a new one per read.
 *
 * Why: for every read of an accepted socket node allocates a new ArrayBuffer of the read's size
 * outside the V8 heap, zero-fills it and copies the bytes into it from the 64 KiB buffer libuv read
 * into (EmitToJSStreamListener::OnStreamRead), then wraps it in a Buffer; the dead buffers are left
 * for V8's young collections to find (read-gc.ts paces those). Measured on the OTLP/HTTP fast path
 * (docs/benchmarks.md, session 16; five alternating pairs of agents with and without): the agent's
 * CPU per record 2.59–2.89 µs without, 2.52–2.65 µs with (median difference 0.18 µs, records/s
 * +4.6 %), the garbage collector's part 0.06–0.16 → 0.03 µs; the zero-filling alone had been 2 % of
 * the agent's samples.
 *
 * Node has this mode as a documented option, `onread: { buffer, callback }` (since v12, for
 * `net.connect` / `socket.connect`; the Socket constructor is what reads it): reads go straight into
 * the caller's buffer and `callback(bytesRead, buffer)` is called with them; returning false from it
 * stops reading, as `socket.pause()` does. Node only takes the option for sockets the caller creates,
 * not for the sockets a server accepts. The option itself is two properties on the socket, under
 * symbols private to node's net module, read by node's own read handler for every socket, plus one
 * call on the socket's handle (`useUserBuffer`). So: the two symbols are found once, on a socket
 * built (never connected) with `onread`, as the properties holding the buffer and the callback it was
 * given; an accepted socket gets the same two properties and the call. Anything not as expected —
 * the properties not found exactly once, no handle, no `useUserBuffer`, a TLS socket (its reads are
 * decrypted by node first) — and `readIntoOwnBuffer` returns undefined, leaving the socket read the
 * usual way ('data' events).
 * SEALTRAIL_HTTP_OWN_READ=0 turns it off (for measurements).
 *
 * The contract for the caller: the bytes passed to `onRead` are valid only until the socket reads
 * again — that is, until `onRead` returns, unless it paused the socket (`socket.pause()` stops reads
 * at once in this mode) — so whatever is kept longer must be copied. Once installed it stays for the
 * socket's life; a caller that hands the socket on must go on receiving in `onRead` and pass the
 * bytes on itself (`socket.push` of a copy), unless the new owner reads the handle directly, as
 * node:http's parser does (it then stacks its own reader on the handle and `onRead` is not called).
 */
import net, { type Socket } from 'node:net';

/** Bytes of each connection's own read buffer: what node reads at once into its own per-read buffers. */
export const OWN_READ_BUFFER_BYTES = 64 * 1024;

interface OnreadKeys {
  readonly buffer: symbol;
  readonly callback: symbol;
}

let keys: OnreadKeys | undefined | null = null; // null: not looked up yet

/** The two private symbols behind `onread`, found on a socket built with it; undefined when not found. */
function findKeys(): OnreadKeys | undefined {
  try {
    const buffer = Buffer.alloc(1);
    const callback = (): void => undefined;
    // The constructor reads `onread` (net.connect passes its options on to it); @types/node lists
    // the option for net.connect only.
    const probe = new net.Socket({ onread: { buffer, callback } } as net.SocketConstructorOpts);
    const props = probe as unknown as Record<symbol, unknown>;
    const holding = (v: unknown): symbol[] => Object.getOwnPropertySymbols(probe).filter((s) => props[s] === v);
    const b = holding(buffer);
    const c = holding(callback);
    probe.destroy();
    return b.length === 1 && c.length === 1 ? { buffer: b[0]!, callback: c[0]! } : undefined;
  } catch {
    return undefined;
  }
}

function onreadKeys(): OnreadKeys | undefined {
  if (keys === null) keys = findKeys();
  return keys;
}

/** Whether this runtime lets accepted plain sockets be read into a buffer of their own. */
export function ownReadAvailable(): boolean {
  return onreadKeys() !== undefined;
}

interface StreamHandle {
  useUserBuffer?: (b: Uint8Array) => void;
}

/**
 * From now on, reads of `socket` go into a buffer of OWN_READ_BUFFER_BYTES of its own, returned, and
 * `onRead(n, buffer)` is called with the first `n` bytes of it (see the contract above); no 'data'
 * events follow for them. Returns undefined, and changes nothing, when this is not possible (then the
 * socket is read as before).
 */
export function readIntoOwnBuffer(socket: Socket, onRead: (n: number, buffer: Buffer) => boolean | void): Buffer | undefined {
  const k = process.env.SEALTRAIL_HTTP_OWN_READ === '0' ? undefined : onreadKeys();
  if (k === undefined) return undefined;
  if ((socket as { encrypted?: boolean }).encrypted === true) return undefined;
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return undefined;
  // allocUnsafeSlow: an ArrayBuffer of its own, never node's shared pool; only bytes a read wrote are handed on.
  const buffer = Buffer.allocUnsafeSlow(OWN_READ_BUFFER_BYTES);
  const own = socket as unknown as Record<symbol, unknown>;
  own[k.buffer] = buffer;
  own[k.callback] = onRead;
  handle.useUserBuffer(buffer);
  return buffer;
}

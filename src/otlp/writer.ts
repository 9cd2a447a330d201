/**
 * A small deterministic protobuf writer for the OTLP/JSON path: callers write fields in field-number
 * order and skip proto3 defaults, so the same parsed request always yields the same bytes.
 * Nested messages use `fork()`/`join()`: one byte is reserved for the length and the payload is
 * shifted only in the rare case it needs a longer length prefix.
 */
import { WT_I32, WT_I64, WT_LEN, WT_VARINT } from './wire.js';

const encoder = new TextEncoder();

/** Value of each ASCII hex digit (0-9, a-f, A-F) by char code; -1 for every other ASCII character. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let c = 0; c < 128; c++) {
  if (c >= 0x30 && c <= 0x39) HEX_VALUE[c] = c - 0x30;
  else if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) HEX_VALUE[c] = (c | 0x20) - 0x57;
}

/** Whether `c` is the char code of a hex digit. */
export function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

export class Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  private readonly starts: number[] = [];

  constructor(initial = 1024) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  /** Forgets everything written, keeping the buffer (a failed encode may leave forks open). */
  reset(): void {
    this.pos = 0;
    this.starts.length = 0;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Non-negative integer below 2^53 as a varint. */
  private varintRaw(v: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      b[p++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    b[p++] = v;
    this.pos = p;
  }

  private key(field: number, wire: number): void {
    this.varintRaw(field * 8 + wire);
  }

  /** uint32 / enum / bool field (value already range-checked, non-negative). */
  uintField(field: number, v: number): void {
    this.key(field, WT_VARINT);
    this.varintRaw(v);
  }

  /**
   * int32 / int64 field from a signed 64-bit integer: negatives take 10 bytes (two's complement).
   * A non-negative safe integer may come as a number, which skips BigInt arithmetic (the common case).
   */
  int64Field(field: number, v: bigint | number): void {
    if (typeof v === 'number') {
      if (v >= 0) {
        this.key(field, WT_VARINT);
        this.varintRaw(v);
        return;
      }
      v = BigInt(v);
    }
    this.key(field, WT_VARINT);
    let x = BigInt.asUintN(64, v);
    this.ensure(10);
    while (x >= 0x80n) {
      this.buf[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.pos++] = Number(x);
  }

  /** int32 field (an enum): negative values are sign-extended to 64 bits as protobuf requires. */
  int32Field(field: number, v: number): void {
    if (v >= 0) this.uintField(field, v);
    else this.int64Field(field, BigInt(v));
  }

  /** fixed64 field from an unsigned 64-bit integer; a safe integer may come as a number (no BigInt). */
  fixed64Field(field: number, v: bigint | number): void {
    this.key(field, WT_I64);
    this.ensure(8);
    if (typeof v === 'number') {
      // Little-endian: low 32 bits, then high (v < 2^53, so both halves are exact).
      const hi = Math.floor(v / 0x100000000);
      this.view.setUint32(this.pos, v - hi * 0x100000000, true);
      this.view.setUint32(this.pos + 4, hi, true);
    } else {
      this.view.setBigUint64(this.pos, v, true);
    }
    this.pos += 8;
  }

  /** fixed64 field from its low and high 32 bits. */
  fixed64Parts(field: number, lo: number, hi: number): void {
    this.key(field, WT_I64);
    this.ensure(8);
    this.view.setUint32(this.pos, lo, true);
    this.view.setUint32(this.pos + 4, hi, true);
    this.pos += 8;
  }

  /**
   * bytes field from a string of hex digits, two per byte (trace and span ids), written without an
   * intermediate Buffer. Returns false, having written nothing that counts (the position is
   * restored), if a character is not a hex digit.
   */
  hexField(field: number, hex: string): boolean {
    const start = this.pos;
    const n = hex.length >> 1;
    this.key(field, WT_LEN);
    this.varintRaw(n);
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < hex.length; i += 2) {
      const c0 = hex.charCodeAt(i);
      const c1 = hex.charCodeAt(i + 1);
      const h = c0 < 128 ? HEX_VALUE[c0]! : -1;
      const l = c1 < 128 ? HEX_VALUE[c1]! : -1;
      if ((h | l) < 0) {
        this.pos = start;
        return false;
      }
      b[p++] = (h << 4) | l;
    }
    this.pos = p;
    return true;
  }

  fixed32Field(field: number, v: number): void {
    this.key(field, WT_I32);
    this.ensure(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  doubleField(field: number, v: number): void {
    this.key(field, WT_I64);
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  bytesField(field: number, v: Uint8Array): void {
    this.key(field, WT_LEN);
    this.varintRaw(v.length);
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  /** String field; the caller has checked that `s` is well-formed UTF-16 (no lone surrogates). */
  stringField(field: number, s: string): void {
    this.key(field, WT_LEN);
    // ASCII fast path for short strings (keys, most values): no encoder call, no view allocation.
    // Longer ones go to TextEncoder.encodeInto: a JS loop up to 16 KiB measured slower on the
    // harness's 200-byte bodies (docs/benchmarks.md "OTLP decode").
    const n = s.length;
    if (n < 0x80) {
      this.ensure(1 + n);
      const b = this.buf;
      let p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i === n) {
        b[this.pos] = n;
        this.pos = p;
        return;
      }
    }
    // UTF-8 needs at most 3 bytes per UTF-16 code unit; reserve the length prefix for that bound.
    const max = s.length * 3;
    const lenBytes = max < 0x80 ? 1 : max < 0x4000 ? 2 : max < 0x200000 ? 3 : max < 0x10000000 ? 4 : 5;
    this.ensure(lenBytes + max);
    const start = this.pos + lenBytes;
    const { written } = encoder.encodeInto(s, this.buf.subarray(start));
    this.finishLen(start, written, lenBytes);
  }

  /** Starts a nested message field. */
  fork(field: number): void {
    this.key(field, WT_LEN);
    this.ensure(1);
    this.pos += 1;
    this.starts.push(this.pos);
  }

  /** Ends the innermost nested message started by `fork`. */
  join(): void {
    const start = this.starts.pop()!;
    this.finishLen(start, this.pos - start, 1);
  }

  /** Writes the length `len` of the payload at `start`, for which `reserved` bytes were left. */
  private finishLen(start: number, len: number, reserved: number): void {
    const need = len < 0x80 ? 1 : len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    if (need !== reserved) {
      this.ensure(need - reserved);
      this.buf.copyWithin(start + need - reserved, start, start + len);
    }
    let p = start - reserved;
    let v = len;
    while (v >= 0x80) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p++] = v;
    this.pos = p + len;
  }
}

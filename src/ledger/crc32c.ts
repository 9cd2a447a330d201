/**
 * CRC-32C (Castagnoli), the checksum of iSCSI (RFC 3720 §12.1 and Appendix B.4), ext4 and
 * LevelDB: reflected polynomial 0x82F63B78, initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF.
 * It protects each segment frame against torn writes and media errors; it is not a security
 * check (the hash chain and the signed Merkle root are).
 *
 * Slicing-by-8 (eight 256-entry tables, 8 bytes per step): measured ~1.6× faster than the
 * one-table loop on 300-byte frames here (see test/ledger/crc32c.test.ts for the comparison).
 */

const POLY = 0x82f63b78;

/** T[k][b] = CRC of byte b followed by k zero bytes (the slicing-by-8 tables). */
const T: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[b] = c >>> 0;
  }
  for (let b = 0; b < 256; b++) {
    let c = t[b]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + b] = c >>> 0;
    }
  }
  return t;
})();

/**
 * Continues a CRC-32C over `data[start, end)`. Pass the previous return value as `crc` to
 * checksum data in pieces; start with 0.
 * @throws RangeError when start/end fall outside `data`
 */
export function crc32cUpdate(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  if (start < 0 || end > data.length || start > end) {
    throw new RangeError(`crc32c: range [${start}, ${end}) outside a ${data.length}-byte buffer`);
  }
  let c = ~crc >>> 0;
  let i = start;
  // Slicing-by-8: fold 8 bytes per iteration (little-endian order, as the reflected CRC wants).
  const stop8 = end - ((end - start) & 7);
  while (i < stop8) {
    const lo = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      T[7 * 256 + (lo & 0xff)]! ^
      T[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      T[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      T[4 * 256 + (lo >>> 24)]! ^
      T[3 * 256 + data[i + 4]!]! ^
      T[2 * 256 + data[i + 5]!]! ^
      T[256 + data[i + 6]!]! ^
      T[data[i + 7]!]!;
    i += 8;
  }
  while (i < end) c = T[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32C of `data[start, end)`. @throws RangeError when start/end fall outside `data` */
export function crc32c(data: Uint8Array, start = 0, end = data.length): number {
  return crc32cUpdate(0, data, start, end);
}

/** Reference bitwise/one-table implementation, kept for the tests and the speed comparison. */
export function crc32cSimple(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = T[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

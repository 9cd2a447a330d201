import { describe, expect, it } from 'vitest';
import { crc32c, crc32cSimple, crc32cUpdate } from '../../src/ledger/crc32c.js';

// RFC 3720 Appendix B.4 "CRC Examples": the CRC bytes there are listed in transmission order
// (least significant byte first), so "aa 36 91 8a" is the value 0x8a9136aa.
const hex = (s: string) => Uint8Array.from(s.trim().split(/\s+/).map((x) => parseInt(x, 16)));
const rfc3720: Array<[string, Uint8Array, number]> = [
  ['32 bytes of zeroes', new Uint8Array(32), 0x8a9136aa],
  ['32 bytes of ones', new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ['32 bytes incrementing 00..1f', Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
  ['32 bytes decrementing 1f..00', Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
  [
    'an iSCSI - SCSI Read (10) Command PDU',
    hex(`01 c0 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         14 00 00 00 00 00 04 00 00 00 00 14 00 00 00 18
         28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00`),
    0xd9963a56,
  ],
];

describe('crc32c', () => {
  it.each(rfc3720)('RFC 3720 B.4: %s', (_name, data, want) => {
    expect(crc32c(data)).toBe(want);
    expect(crc32cSimple(data)).toBe(want);
  });

  it('the common check value: "123456789" -> 0xe3069283', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('slicing-by-8 equals the one-table loop for every length 0..300 and any split point', () => {
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff);
    for (let n = 0; n <= data.length; n++) {
      const part = data.subarray(0, n);
      const want = crc32cSimple(part);
      expect(crc32c(part)).toBe(want);
      const split = n >> 1;
      expect(crc32cUpdate(crc32cUpdate(0, part, 0, split), part, split, n)).toBe(want);
    }
  });

  it('refuses ranges outside the buffer', () => {
    expect(() => crc32c(new Uint8Array(4), 0, 5)).toThrow(RangeError);
    expect(() => crc32c(new Uint8Array(4), 3, 2)).toThrow(RangeError);
  });
});

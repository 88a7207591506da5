'use strict';
// The snapshot checksum, shared by the mutation fuzzer (which writes it
// after each mutation) and the replay (which fixes up libFuzzer findings).

/** CRC-16-CCITT of the snapshot after its 8-byte prefix, as the engine. */
function crc16(bytes) {
  let r = 0xffff;
  for (const b of bytes) {
    r = ((r >> 8) | (r << 8)) & 0xffff;
    r ^= b;
    r ^= (r & 0xff) >> 4;
    r ^= (r << 12) & 0xffff;
    r ^= ((r & 0xff) << 5) & 0xffff;
  }
  return r;
}

/** Writes the snapshot's CRC for its current content. */
function fixCrc(v) {
  const c = crc16(v.subarray(8));
  v[6] = c & 0xff;
  v[7] = c >> 8;
  return v;
}

module.exports = { crc16, fixCrc };

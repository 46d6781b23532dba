/**
 * A column of float64 bits as XORs with the previous value (Gorilla, Pelkonen et al., VLDB
 * 2015), for values no scale fits (column-codec.ts). The first value is kept whole; after it, a
 * value equal to the one before is one 0 bit, and any other is `10` and its XOR's bits inside
 * the window of the last `11`, or `11`, its leading zeros (6 bits), its length less one
 * (6 bits) and those bits. Each value is two 32-bit words, low first, as a little-endian
 * Float64Array's memory is.
 */
import type { BitReader, BitWriter } from './bit-stream.ts';

const trailingZeros = (word: number) => 31 - Math.clz32(word & -word);

/** Writes the low `width` bits of the 64-bit (hi, lo) shifted right by `shift`. */
function writeShifted(out: BitWriter, hi: number, lo: number, shift: number, width: number): void {
  let low: number;
  let high: number;
  if (shift === 0) {
    low = lo;
    high = hi;
  } else if (shift < 32) {
    low = ((lo >>> shift) | (hi << (32 - shift))) >>> 0;
    high = hi >>> shift;
  } else {
    low = hi >>> (shift - 32);
    high = 0;
  }
  if (width <= 32) {
    out.write(width === 32 ? low : low & (0xffffffff >>> (32 - width)), width);
  } else {
    out.write(low, 32);
    out.write(high, width - 32);
  }
}

export function writeXorColumn(out: BitWriter, bits: Uint32Array, n: number): void {
  let previousLo = bits[0];
  let previousHi = bits[1];
  out.write(previousLo, 32);
  out.write(previousHi, 32);
  let leading = -1;
  let trailing = 0;
  for (let i = 1; i < n; i++) {
    const lo = bits[2 * i];
    const hi = bits[2 * i + 1];
    const xorLo = (lo ^ previousLo) >>> 0;
    const xorHi = (hi ^ previousHi) >>> 0;
    previousLo = lo;
    previousHi = hi;
    if (xorLo === 0 && xorHi === 0) {
      out.write(0, 1);
      continue;
    }
    const lead = xorHi !== 0 ? Math.clz32(xorHi) : 32 + Math.clz32(xorLo);
    const trail = xorLo !== 0 ? trailingZeros(xorLo) : 32 + trailingZeros(xorHi);
    if (leading >= 0 && lead >= leading && trail >= trailing) {
      out.write(0b01, 2);
    } else {
      leading = lead;
      trailing = trail;
      out.write(0b11, 2);
      out.write(leading, 6);
      out.write(63 - leading - trailing, 6);
    }
    writeShifted(out, xorHi, xorLo, trailing, 64 - leading - trailing);
  }
}

export function readXorColumn(reader: BitReader, bits: Uint32Array, n: number): void {
  let lo = reader.read(32);
  let hi = reader.read(32);
  bits[0] = lo;
  bits[1] = hi;
  let leading = -1;
  let trailing = 0;
  for (let i = 1; i < n; i++) {
    if (reader.read(1) === 1) {
      if (reader.read(1) === 1) {
        leading = reader.read(6);
        trailing = 63 - leading - reader.read(6);
        if (trailing < 0) throw reader.corrupt('an XOR wider than 64 bits');
      } else if (leading < 0) {
        throw reader.corrupt('an XOR window used before one is set');
      }
      const width = 64 - leading - trailing;
      const low = reader.read(Math.min(width, 32));
      const high = width > 32 ? reader.read(width - 32) : 0;
      if (trailing === 0) {
        lo ^= low;
        hi ^= high;
      } else if (trailing < 32) {
        lo ^= low << trailing;
        hi ^= (low >>> (32 - trailing)) | (high << trailing);
      } else {
        hi ^= low << (trailing - 32);
      }
    }
    bits[2 * i] = lo;
    bits[2 * i + 1] = hi;
  }
}

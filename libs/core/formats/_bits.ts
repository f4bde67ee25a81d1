// Private helpers shared by the format files: float32 bit views, rounding, checks.
// Never exported from mod.ts.

import { LowbitError } from "../errors.ts";
import type { Codes } from "../types.ts";

/** The raw IEEE-754 bits of each element of `x` (a view, no copy). */
export function f32Bits(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

const scratch = new DataView(new ArrayBuffer(4));

/** The float32 whose bit pattern is `bits`. */
export function f32FromBits(bits: number): number {
  scratch.setUint32(0, bits >>> 0);
  return scratch.getFloat32(0);
}

/** The bit pattern of `Math.fround(v)`. */
export function bitsOfF32(v: number): number {
  scratch.setFloat32(0, v);
  return scratch.getUint32(0);
}

export { roundHalfEven } from "../quant/round.ts";

/** A code array of the right width for `bits`-bit codes. */
export function newCodes(bits: number, n: number): Codes {
  return bits <= 8 ? new Uint8Array(n) : new Uint16Array(n);
}

/** Throws SHAPE_MISMATCH unless `n` is a multiple of `block`. */
export function checkBlockLength(n: number, block: number, format: string): void {
  if (n % block !== 0) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `format '${format}' encodes blocks of ${block} values; got ${n} values, ` +
        `which is not a multiple of ${block} (pad the tensor or pick a group size that divides it)`,
    );
  }
}

/** Sorted distinct finite values of a decode table. */
export function distinctFinite(table: Float32Array): Float32Array {
  const seen = new Set<number>();
  for (const v of table) if (Number.isFinite(v)) seen.add(v === 0 ? 0 : v);
  return Float32Array.from([...seen].sort((a, b) => a - b));
}

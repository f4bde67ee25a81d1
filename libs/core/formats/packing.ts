/**
 * Packing of sub-byte codes into bytes, and back.
 *
 * - `packBits` / `unpackBits`: any width 1..16, a little-endian bit stream:
 *   code i occupies bits [i·w, (i+1)·w) counting from the least significant
 *   bit of byte 0. For w = 4 that is two codes per byte, the first in the low
 *   nibble (ONNX int4 / uint4 order); for w = 6 it is four codes per three
 *   bytes; for w = 2 four codes per byte. The last byte is zero-padded.
 * - `pack4` / `unpack4`, `pack6` / `unpack6`: the common cases, named.
 * - `packTrits` / `unpackTrits`: ternary codes (2-bit two's complement, as
 *   the "ternary" format emits) five per byte in base 3 (3^5 = 243 ≤ 256):
 *   byte = Σ (t_i + 1) · 3^i, 1.6 bits per trit.
 *
 * Unpacking needs the code count, since padding is ambiguous. A code that does
 * not fit the width, or a byte array too short for `count`, is a `LowbitError`.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Codes } from "../types.ts";
import { newCodes } from "./_bits.ts";

function checkWidth(bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 16) {
    throw new LowbitError("INVALID_ARGUMENT", `pack: code width must be 1..16 bits, got ${bits}`);
  }
}

function checkBytes(have: number, need: number, what: string): void {
  if (have < need) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${what}: ${need} bytes needed for the requested count, got ${have}`,
    );
  }
}

/**
 * Packs `bits`-bit codes into a little-endian bit stream.
 *
 * @param codes one code per element, each < 2^bits
 * @param bits code width, 1..16
 * @returns ceil(codes.length · bits / 8) bytes
 *
 * @example
 * ```ts
 * import { packBits, unpackBits } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const packed = packBits(new Uint8Array([1, 2, 3]), 2); // 0b00_11_10_01
 * assert.deepEqual([...packed], [0b111001]);
 * assert.deepEqual([...unpackBits(packed, 2, 3)], [1, 2, 3]);
 * ```
 */
export function packBits(codes: Codes, bits: number): Uint8Array {
  checkWidth(bits);
  const out = new Uint8Array(Math.ceil((codes.length * bits) / 8));
  const limit = 2 ** bits;
  let acc = 0, nacc = 0, o = 0;
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c >= limit) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `pack: code ${c} at index ${i} does not fit in ${bits} bits`,
      );
    }
    acc |= c << nacc;
    nacc += bits;
    while (nacc >= 8) {
      out[o++] = acc & 0xff;
      acc >>>= 8;
      nacc -= 8;
    }
  }
  if (nacc > 0) out[o] = acc & 0xff;
  return out;
}

/**
 * Unpacks `count` codes of `bits` bits from a little-endian bit stream.
 *
 * @param bytes what {@link packBits} produced
 * @param bits code width, 1..16
 * @param count number of codes
 * @returns the codes (Uint8Array up to 8 bits, else Uint16Array)
 *
 * @example
 * ```ts
 * import { packBits, unpackBits } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const codes = new Uint16Array([1000, 5, 2047]);
 * assert.deepEqual(unpackBits(packBits(codes, 11), 11, 3), codes);
 * ```
 */
export function unpackBits(bytes: Uint8Array, bits: number, count: number): Codes {
  checkWidth(bits);
  checkBytes(bytes.length, Math.ceil((count * bits) / 8), "unpack");
  const out = newCodes(bits, count);
  const mask = 2 ** bits - 1;
  let acc = 0, nacc = 0, p = 0;
  for (let i = 0; i < count; i++) {
    while (nacc < bits) {
      acc |= bytes[p++] << nacc;
      nacc += 8;
    }
    out[i] = acc & mask;
    acc >>>= bits;
    nacc -= bits;
  }
  return out;
}

/**
 * Packs 4-bit codes two per byte, the first in the low nibble.
 *
 * @param codes 4-bit codes
 * @returns ceil(n / 2) bytes
 *
 * @example
 * ```ts
 * import { pack4 } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.deepEqual([...pack4(new Uint8Array([0x1, 0xf, 0x7]))], [0xf1, 0x07]);
 * ```
 */
export function pack4(codes: Codes): Uint8Array {
  return packBits(codes, 4);
}

/**
 * Unpacks `count` 4-bit codes (two per byte, low nibble first).
 *
 * @param bytes packed bytes
 * @param count number of codes
 * @returns the codes
 *
 * @example
 * ```ts
 * import { unpack4 } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.deepEqual([...unpack4(new Uint8Array([0xf1, 0x07]), 3)], [0x1, 0xf, 0x7]);
 * ```
 */
export function unpack4(bytes: Uint8Array, count: number): Uint8Array {
  return unpackBits(bytes, 4, count) as Uint8Array;
}

/**
 * Packs 6-bit codes four per three bytes (little-endian bit stream).
 *
 * @param codes 6-bit codes
 * @returns ceil(6n / 8) bytes
 *
 * @example
 * ```ts
 * import { pack6 } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.equal(pack6(new Uint8Array([63, 0, 63, 0])).length, 3);
 * ```
 */
export function pack6(codes: Codes): Uint8Array {
  return packBits(codes, 6);
}

/**
 * Unpacks `count` 6-bit codes.
 *
 * @param bytes packed bytes
 * @param count number of codes
 * @returns the codes
 *
 * @example
 * ```ts
 * import { pack6, unpack6 } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const c = new Uint8Array([1, 62, 33, 7, 9]);
 * assert.deepEqual(unpack6(pack6(c), 5), c);
 * ```
 */
export function unpack6(bytes: Uint8Array, count: number): Uint8Array {
  return unpackBits(bytes, 6, count) as Uint8Array;
}

const TRIT_OF_CODE = [1, 2, -1, 0]; // code → trit + 1 (code 2 is invalid: -1 marks it)
const CODE_OF_DIGIT = [3, 0, 1]; // trit + 1 → 2-bit two's complement code

/**
 * Packs ternary codes (0 → 0, 1 → +1, 3 → −1) five per byte in base 3.
 *
 * @param codes 2-bit trit codes
 * @returns ceil(n / 5) bytes, each < 243
 *
 * @example
 * ```ts
 * import { packTrits, unpackTrits } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const trits = new Uint8Array([1, 3, 0, 1, 1, 3]); // +1 −1 0 +1 +1 −1
 * const packed = packTrits(trits);
 * assert.equal(packed.length, 2);
 * assert.deepEqual(unpackTrits(packed, 6), trits);
 * ```
 */
export function packTrits(codes: Codes): Uint8Array {
  const out = new Uint8Array(Math.ceil(codes.length / 5));
  for (let i = 0; i < codes.length; i++) {
    const d = codes[i] < 4 ? TRIT_OF_CODE[codes[i]] : -1;
    if (d < 0) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `packTrits: code ${codes[i]} at index ${i} is not a trit (0, 1 or 3)`,
      );
    }
    out[Math.floor(i / 5)] += d * 3 ** (i % 5);
  }
  return out;
}

/**
 * Unpacks `count` ternary codes packed five per byte.
 *
 * @param bytes packed bytes
 * @param count number of trits
 * @returns 2-bit trit codes (0, 1, 3)
 *
 * @example
 * ```ts
 * import { unpackTrits } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.deepEqual([...unpackTrits(new Uint8Array([242]), 5)], [1, 1, 1, 1, 1]);
 * ```
 */
export function unpackTrits(bytes: Uint8Array, count: number): Uint8Array {
  checkBytes(bytes.length, Math.ceil(count / 5), "unpackTrits");
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const byte = bytes[Math.floor(i / 5)];
    if (byte >= 243) {
      throw new LowbitError("INVALID_ARGUMENT", `unpackTrits: byte ${byte} is not 5 trits`);
    }
    out[i] = CODE_OF_DIGIT[Math.floor(byte / 3 ** (i % 5)) % 3];
  }
  return out;
}

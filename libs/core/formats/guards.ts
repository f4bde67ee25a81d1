/**
 * Type guards from the general `NumberFormat` to the richer format records.
 *
 * @module
 */

import type { BlockFormat, NumberFormat } from "../types.ts";
import type { IntegerFormat } from "./integer.ts";
import type { MinifloatFormat } from "./minifloat.ts";

/**
 * Whether `f` is block-scaled (MX, NVFP4): it has `blockSize`, `encodeBlocks`, ...
 *
 * @param f any format
 * @returns true for block formats
 *
 * @example
 * ```ts
 * import { getFormat, isBlockFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const f = getFormat("mxfp4");
 * assert.ok(isBlockFormat(f) && f.blockSize === 32);
 * assert.ok(!isBlockFormat(getFormat("int8")));
 * ```
 */
export function isBlockFormat(f: NumberFormat): f is BlockFormat {
  return f.family === "block" && typeof (f as BlockFormat).encodeBlocks === "function";
}

/**
 * Whether `f` is a minifloat (FP8 / FP6 / FP4 / E8M0 / fp16 / bf16 / any ExMy).
 *
 * @param f any format
 * @returns true for minifloats
 *
 * @example
 * ```ts
 * import { getFormat, isMinifloatFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const f = getFormat("fp8_e5m2");
 * assert.ok(isMinifloatFormat(f) && f.exponentBits === 5);
 * ```
 */
export function isMinifloatFormat(f: NumberFormat): f is MinifloatFormat {
  return f.family === "float" && typeof (f as MinifloatFormat).exponentBits === "number";
}

/**
 * Whether `f` is an integer / fixed-point format.
 *
 * @param f any format
 * @returns true for integer formats
 *
 * @example
 * ```ts
 * import { getFormat, isIntegerFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const f = getFormat("uint4");
 * assert.ok(isIntegerFormat(f) && f.qmax === 15);
 * ```
 */
export function isIntegerFormat(f: NumberFormat): f is IntegerFormat {
  return f.family === "int" && typeof (f as IntegerFormat).qmax === "number";
}

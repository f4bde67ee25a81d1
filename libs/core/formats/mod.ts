/**
 * Number formats: integers, minifloats (FP8 / FP6 / FP4 / E8M0 and any ExMy),
 * OCP MX and NVFP4 block formats, ternary (BitNet b1.58, PTQTP), binary,
 * NUPES power-exponent grids, and sub-byte packing.
 *
 * @example
 * ```ts
 * import { getFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const fp4 = getFormat("fp4_e2m1fn");
 * assert.deepEqual([...fp4.decode(fp4.encode(new Float32Array([2.5, 5, 7])))], [2, 4, 6]);
 * ```
 *
 * @module
 */

export * from "./minifloat.ts";
export * from "./integer.ts";
export * from "./block.ts";
export * from "./scaled.ts";
export * from "./ternary.ts";
export * from "./binary.ts";
export * from "./ptqtp.ts";
export * from "./nupes.ts";
export * from "./packing.ts";
export * from "./builtin.ts";
export * from "./names.ts";
export * from "./guards.ts";
export * from "./onnx_types.ts";
export * from "./scalar_codecs.ts";
export * from "./kernel_map.ts";

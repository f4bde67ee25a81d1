/**
 * Which of lowbit's GEMM kernels runs a weight format, as data next to the formats (the ONNX
 * storage types are in `onnx_types.ts`): integer weights with integer activations run the int8
 * kernel (4-bit and narrower codes on the packed int4 one), the minifloat and block formats the
 * kernels decode in registers run the minifloat GEMM, and everything else runs in float32.
 *
 * @module
 */

import type { NumberFormat } from "../types.ts";

/** A kernel family. */
export type WeightKernel = "s8" | "s4" | "minifloat" | "f32";

/** Weight formats the minifloat GEMM decodes in registers (elements and MX / NVFP4 blocks). */
export const MINIFLOAT_KERNEL_FORMATS: ReadonlySet<string> = new Set([
  "fp8_e4m3fn",
  "fp8_e5m2",
  "fp6_e3m2fn",
  "fp6_e2m3fn",
  "fp4_e2m1fn",
  "mxfp8_e4m3",
  "mxfp8_e5m2",
  "mxfp6_e3m2",
  "mxfp6_e2m3",
  "mxfp4",
  "nvfp4",
]);

/**
 * The kernel that runs a weight format with an activation format.
 *
 * @param weight the weight format
 * @param activation the activation format, or "none" for float inputs
 * @returns the kernel family
 *
 * @example
 * ```ts
 * import { getFormat, weightKernel } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.equal(weightKernel(getFormat("int4"), getFormat("int8")), "s4");
 * assert.equal(weightKernel(getFormat("int8"), "none"), "f32");
 * assert.equal(weightKernel(getFormat("mxfp4"), getFormat("int8")), "minifloat");
 * ```
 */
export function weightKernel(
  weight: NumberFormat,
  activation: NumberFormat | "none",
): WeightKernel {
  if (MINIFLOAT_KERNEL_FORMATS.has(weight.name)) return "minifloat";
  const intAct = activation !== "none" && activation.family === "int";
  if (
    intAct && (weight.family === "int" || weight.family === "ternary" || weight.family === "binary")
  ) {
    return weight.bits <= 4 ? "s4" : "s8";
  }
  return "f32";
}

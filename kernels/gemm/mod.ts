/**
 * @lowbit/kernels: AssemblyScript WASM SIMD kernels and their typed loaders.
 *
 * - `int.ts`: int8 / int4 GEMM and GEMV, dyadic requantization (plain and exact relaxed SIMD).
 * - `int_fused.ts`: the same GEMMs with the requantization (int8 / uint8) or a float scale epilogue
 *   fused into the tile store.
 * - `runner.ts`: where kernels run (one memory, one allocator, row-range splitting); the
 *   worker pool of `@lowbit/runtime` implements the same `KernelRunner`.
 * - `reference.ts`: scalar references the kernels equal exactly.
 * - `float.ts` / `reference_float.ts`: f32 and minifloat-weight GEMM / GEMV, conv, references.
 * - `minifloat_s8.ts`: FP4 / FP6 E2M3 weights × int8 activations, exactly, on the int8 kernels.
 *
 * @example
 * ```ts
 * import { gemmIntRef, gemmS8, loadIntKernels, packS8 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const a = new Int8Array([1, -2, 3, -4, 5, -6]); // 2×3
 * const w = new Int8Array([7, 8, 9, 10, 11, 12]); // 3×2
 * const c = await gemmS8(k, a, 2, packS8(k, w, 3, 2));
 * if (c.join() !== gemmIntRef(a, 2, 3, w, 2).join()) throw new Error();
 * ```
 *
 * @module
 */

export * from "./runner.ts";
export * from "./int.ts";
export * from "./int_fused.ts";
export * from "./reference.ts";
export * from "./float.ts";
export * from "./reference_float.ts";
export * from "./minifloat_s8.ts";

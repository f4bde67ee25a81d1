/**
 * `MinifloatGemmFused` (domain "lowbit"): y[…, n] = Σ_k x[…, k] · decode(w[k, n]) · scale[n] + bias[n]
 * with float8 weight codes, on the float kernels' minifloat GEMM (the TypeScript
 * reference decodes the codes and runs the float GEMM). Produced by `fuseQdq`
 * from DequantizeLinear(float8 weights) → MatMul / Gemm. Attributes: `format`
 * ("fp8_e4m3fn" | "fp8_e5m2"), `layout` ("kn": codes K×N as MatMul's B; "nk": N×K,
 * Gemm transB). Against the float QDQ reference the scale moves from each product
 * to the sum: differences within K·2⁻²³ relative.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import {
  decodeMinifloatWeights,
  type FloatKernels,
  gemmMinifloat,
  gemmMinifloatParallel,
  type MinifloatWeights,
  type PackedMinifloatB,
  packMinifloatB,
} from "@lowbit/kernels";
import { attrString, size, toF32 } from "../_tensor.ts";
import { backendKernels, matmulF32 } from "./_float_backend.ts";
import type { OpImpl, OpTable } from "./types.ts";

const registry = new FinalizationRegistry<PackedMinifloatB>((p) => p.dispose());
// Codes packed once per kernel context (each has its own memory), by the codes' array.
const packed = new WeakMap<FloatKernels, WeakMap<object, PackedMinifloatB>>();

const minifloatGemm: OpImpl = async (inputs, node, ctx) => {
  const [x, w, s] = inputs;
  if (!x || !w || !s || x.dtype !== "float32") {
    throw new LowbitError("INVALID_ARGUMENT", "MinifloatGemmFused: x, codes and scale required", {
      node: node.name,
    });
  }
  const format = attrString(node, "format", "fp8_e4m3fn") as "fp8_e4m3fn" | "fp8_e5m2";
  const layout = attrString(node, "layout", "kn") as "kn" | "nk";
  const [k, n] = layout === "kn" ? w.shape : [w.shape[1], w.shape[0]];
  if (x.shape[x.shape.length - 1] !== k) {
    throw new LowbitError("SHAPE_MISMATCH", `MinifloatGemmFused: x [${x.shape}] × w [${w.shape}]`, {
      node: node.name,
    });
  }
  const m = size(x.shape) / k;
  const sv = toF32(s);
  const scale = sv.length === n ? sv : new Float32Array(n).fill(sv[0]);
  const bias = inputs[3] ? toF32(inputs[3]) : undefined;
  const spec: MinifloatWeights = {
    format,
    k,
    n,
    codes: w.data as Uint8Array,
    layout,
    channelScale: scale,
  };
  const shape = [...x.shape.slice(0, -1), n];
  // The float ops' context: the executor's pool, else the calling thread's plain-SIMD context
  // (one memory and one set of scratch blocks per process, and the bits of every engine: the
  // default relaxed-SIMD context fuses multiply-adds where the engine chooses to).
  const fk = ctx.reference ? null : ctx.floatKernels ?? backendKernels();
  if (fk === null) {
    // Decode (always K×N), scale per column, float GEMM.
    const dec = decodeMinifloatWeights({ ...spec, channelScale: undefined });
    for (let i = 0; i < dec.length; i++) dec[i] = dec[i] * scale[i % n];
    const y = matmulF32(x.data as Float32Array, m, dec, 0, k, n, "kn", bias, {
      reference: true,
      constant: false,
    });
    return [{ dtype: "float32", shape, data: y }];
  }
  let byCodes = packed.get(fk);
  if (byCodes === undefined) packed.set(fk, byCodes = new WeakMap());
  let p = byCodes.get(w.data);
  const temporary = p === undefined && !(ctx.isConstant?.(w) ?? false);
  if (p === undefined) {
    p = packMinifloatB(spec, fk);
    if (!temporary) {
      byCodes.set(w.data, p);
      registry.register(w.data, p);
    }
  }
  try {
    const xs = x.data as Float32Array;
    // On a pool: its threads split the rows (each output element is one thread's sum).
    const y = fk.threads > 1
      ? await gemmMinifloatParallel(xs, m, p, { bias })
      : gemmMinifloat(xs, m, p, { bias });
    return [{ dtype: "float32", shape, data: y }];
  } finally {
    if (temporary) p.dispose();
  }
};

/**
 * The fused minifloat-weight GEMM.
 *
 * @example
 * ```ts
 * import { minifloatOps } from "./minifloat.ts";
 * const node = {
 *   name: "m", op: "MinifloatGemmFused", domain: "lowbit", inputs: [], outputs: ["y"],
 *   attrs: { format: { kind: "string" as const, value: "fp8_e4m3fn" } },
 * };
 * const x = { dtype: "float32" as const, shape: [1, 2], data: new Float32Array([1, 2]) };
 * // e4m3fn 0x38 = 1, 0x40 = 2; K×N = 2×1
 * const w = { dtype: "float8e4m3fn" as const, shape: [2, 1], data: new Uint8Array([0x38, 0x40]) };
 * const s = { dtype: "float32" as const, shape: [], data: new Float32Array([0.5]) };
 * const [y] = await minifloatOps.MinifloatGemmFused([x, w, s], node, { opset: 19 });
 * if (y.data[0] !== 2.5) throw new Error(String(y.data[0]));
 * ```
 */
export const minifloatOps: OpTable<"MinifloatGemmFused"> = { MinifloatGemmFused: minifloatGemm };

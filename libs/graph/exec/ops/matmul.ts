/**
 * Matrix products on float32: `MatMul` (numpy semantics: 1-D promotion, batch
 * broadcasting) and `Gemm` (transA / transB, alpha, beta, broadcast C).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrFloat, attrInt, fusedClamp, size, toF32 } from "../_tensor.ts";
import { broadcastShapes, planBroadcast } from "./_broadcast.ts";
import { matmulF32Threaded } from "./_float_backend.ts";
import type { OpImpl, OpTable } from "./types.ts";

function floatIn(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  if (t.dtype !== "float32") {
    throw new LowbitError("UNSUPPORTED", `${node.op}: ${what} is ${t.dtype} (float32 only)`, {
      node: node.name,
    });
  }
  return t;
}

// Transposed copies of constant matrices (weights), reused across runs.
const transposed = new WeakMap<Float32Array, Float32Array>();

/**
 * Transposes a row-major rows×cols matrix.
 *
 * @param a the matrix
 * @param rows rows of `a`
 * @param cols columns of `a`
 * @returns the cols×rows transpose (cached per input array, which must not change)
 *
 * @example
 * ```ts
 * import { transpose2d } from "./matmul.ts";
 * const t = transpose2d(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3);
 * if (t.join() !== "1,4,2,5,3,6") throw new Error();
 * ```
 */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const hit = transposed.get(a);
  if (hit !== undefined && hit.length === a.length) return hit;
  const t = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  }
  transposed.set(a, t);
  return t;
}

const matmul: OpImpl = async (inputs, node, ctx) => {
  const at = floatIn(node, inputs[0], "A");
  const bt = floatIn(node, inputs[1], "B");
  const aS = at.shape.length === 1 ? [1, at.shape[0]] : at.shape;
  const bS = bt.shape.length === 1 ? [bt.shape[0], 1] : bt.shape;
  const m = aS[aS.length - 2], k = aS[aS.length - 1];
  const k2 = bS[bS.length - 2], n = bS[bS.length - 1];
  if (k !== k2) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `MatMul: inner dimensions differ ([${at.shape}] × [${bt.shape}])`,
      { node: node.name },
    );
  }
  const a = at.data as Float32Array, b = bt.data as Float32Array;
  const aBatch = aS.slice(0, -2), bBatch = bS.slice(0, -2);
  const batch = broadcastShapes([aBatch, bBatch], node);
  let y: Float32Array;
  if (size(bBatch) === 1) {
    // One GEMM: A's batch folds into M.
    const rows = size(aBatch) * m;
    y = await matmulF32Threaded(a, rows, b, 0, k, n, "kn", undefined, {
      reference: ctx.reference ?? false,
      constant: ctx.isConstant?.(bt) ?? false,
      clamp: fusedClamp(node),
      kernels: ctx.floatKernels,
      alloc: ctx.allocF32,
    });
  } else {
    const plan = planBroadcast([aBatch, bBatch], batch);
    const nb = size(batch);
    y = new Float32Array(nb * m * n);
    let r = 0;
    for (let o = 0; o < plan.outer; o++) {
      for (let i = 0; i < plan.inner; i++, r++) {
        const ai = plan.offsets[0][o] + i * plan.steps[0];
        const bi = plan.offsets[1][o] + i * plan.steps[1];
        const part = await matmulF32Threaded(
          a.subarray(ai * m * k, (ai + 1) * m * k),
          m,
          b,
          bi * k * n,
          k,
          n,
          "kn",
          undefined,
          {
            reference: ctx.reference ?? false,
            constant: false,
            clamp: fusedClamp(node),
            kernels: ctx.floatKernels,
          },
        );
        y.set(part, r * m * n);
      }
    }
  }
  const shape = [...batch];
  if (at.shape.length !== 1) shape.push(m);
  if (bt.shape.length !== 1) shape.push(n);
  return [{ dtype: "float32", shape, data: y }];
};

const gemm: OpImpl = async (inputs, node, ctx) => {
  const at = floatIn(node, inputs[0], "A");
  const bt = floatIn(node, inputs[1], "B");
  const ta = attrInt(node, "transA", 0) === 1, tb = attrInt(node, "transB", 0) === 1;
  const alpha = attrFloat(node, "alpha", 1), beta = attrFloat(node, "beta", 1);
  if (at.shape.length !== 2 || bt.shape.length !== 2) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `Gemm: A [${at.shape}] and B [${bt.shape}] must be 2-D`,
      {
        node: node.name,
      },
    );
  }
  const m = ta ? at.shape[1] : at.shape[0], k = ta ? at.shape[0] : at.shape[1];
  const n = tb ? bt.shape[0] : bt.shape[1], k2 = tb ? bt.shape[1] : bt.shape[0];
  if (k !== k2) {
    throw new LowbitError("SHAPE_MISMATCH", `Gemm: inner dimensions differ (${k} vs ${k2})`, {
      node: node.name,
    });
  }
  let a = at.data as Float32Array;
  if (ta) {
    const t = new Float32Array(a.length);
    for (let i = 0; i < k; i++) for (let j = 0; j < m; j++) t[j * k + i] = a[i * m + j];
    a = t;
  }
  const ct = inputs[2];
  // A per-column bias (C of n elements, alpha = beta = 1) fuses into the kernel's epilogue.
  const fuseBias = ct !== undefined && alpha === 1 && beta === 1 && ct.data.length === n &&
    ct.shape[ct.shape.length - 1] === n && ct.dtype === "float32";
  const clamp = fusedClamp(node);
  const y = await matmulF32Threaded(
    a,
    m,
    bt.data as Float32Array,
    0,
    k,
    n,
    tb ? "nk" : "kn",
    fuseBias ? ct.data as Float32Array : undefined,
    {
      reference: ctx.reference ?? false,
      constant: ctx.isConstant?.(bt) ?? false,
      clamp: fuseBias || ct === undefined || beta === 0 ? clamp : undefined,
      kernels: ctx.floatKernels,
    },
  );
  if (alpha !== 1) { for (let i = 0; i < y.length; i++) y[i] *= alpha; }
  if (ct !== undefined && beta !== 0 && !fuseBias) {
    const c = toF32(ct);
    broadcastShapes([ct.shape, [m, n]], node);
    const plan = planBroadcast([ct.shape], [m, n]);
    let p = 0;
    for (let r = 0; r < plan.outer; r++) {
      const o = plan.offsets[0][r], s = plan.steps[0];
      for (let i = 0; i < plan.inner; i++) y[p++] += beta * c[o + i * s];
    }
    if (clamp) {
      for (let i = 0; i < y.length; i++) y[i] = Math.min(clamp[1], Math.max(clamp[0], y[i]));
    }
  }
  return [{ dtype: "float32", shape: [m, n], data: y }];
};

/**
 * Matrix product ops, by name.
 *
 * @example
 * ```ts
 * import { matmulOps } from "./matmul.ts";
 * const node = { name: "mm", op: "MatMul", domain: "", inputs: ["a", "b"], outputs: ["y"], attrs: {} };
 * const a = { dtype: "float32" as const, shape: [1, 2], data: new Float32Array([1, 2]) };
 * const b = { dtype: "float32" as const, shape: [2, 1], data: new Float32Array([3, 4]) };
 * const [y] = await matmulOps.MatMul([a, b], node, { opset: 17 });
 * if (y.data[0] !== 11) throw new Error();
 * ```
 */
export const matmulOps: OpTable<"MatMul" | "Gemm"> = { MatMul: matmul, Gemm: gemm };

/**
 * `Resize` (and the opset-10 form) on float32 tensors of any rank: nearest
 * (round_prefer_floor / round_prefer_ceil / floor / ceil) and linear
 * (separable, one axis at a time), with the coordinate transformations
 * half_pixel, pytorch_half_pixel, align_corners, asymmetric,
 * tf_half_pixel_for_nearest and half_pixel_symmetric.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrString, outF32, size, strides, toF32, toNumbers } from "../_tensor.ts";
import type { OpContext, OpImpl, OpTable } from "./types.ts";

type Transform = (x: number, scale: number, lin: number, lout: number) => number;

const TRANSFORMS: Record<string, Transform> = {
  half_pixel: (x, s) => (x + 0.5) / s - 0.5,
  pytorch_half_pixel: (x, s, _li, lo) => (lo > 1 ? (x + 0.5) / s - 0.5 : 0),
  align_corners: (x, _s, li, lo) => (lo === 1 ? 0 : (x * (li - 1)) / (lo - 1)),
  asymmetric: (x, s) => x / s,
  tf_half_pixel_for_nearest: (x, s) => (x + 0.5) / s,
  half_pixel_symmetric: (x, s, li, lo) => {
    const adj = lo / (s * li);
    const center = li / 2;
    return center * (1 - adj) + (x + 0.5) / s - 0.5;
  },
};

type Rounding = (x: number, down: boolean) => number;

const ROUNDINGS: Record<string, Rounding> = {
  round_prefer_floor: (x) => (x - Math.floor(x) === 0.5 ? Math.floor(x) : Math.round(x)),
  round_prefer_ceil: (x) => Math.round(x),
  floor: (x) => Math.floor(x),
  ceil: (x) => Math.ceil(x),
  // onnxruntime's rule for Resize-10 / Upsample.
  simple: (x, down) => (down ? Math.ceil(x) : Math.trunc(x)),
};

/** y[o + i] = x[base + map[i]]: one output row of a nearest resize (kept small so it optimises once). */
function gatherRow(
  y: Float32Array,
  o: number,
  x: Float32Array,
  base: number,
  map: Int32Array,
  n: number,
): void {
  for (let i = 0; i < n; i++) y[o + i] = x[base + map[i]];
}

/** y[o + i] = a[o + i] + r[i]: one output row of a nearest resize added to `a`. */
function addRow(y: Float32Array, o: number, a: Float32Array, r: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) y[o + i] = a[o + i] + r[i];
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Resize on float32, optionally adding `addend` (float32, of the output's shape) to the result in
 * the same pass, with the bits of a separate Add. `added` is false when `addend` was given but
 * does not have the output's shape (then the caller adds it).
 *
 * @param inputs the Resize inputs
 * @param node the node (Resize attributes)
 * @param ctx op context
 * @param addend tensor to add, if any
 * @returns the output, and whether `addend` was added
 */
export function resizeF32(
  inputs: readonly (TensorData | undefined)[],
  node: Node,
  ctx: OpContext,
  addend?: TensorData,
): { y: TensorData; added: boolean } {
  const t = inputs[0];
  if (t === undefined || t.dtype !== "float32") {
    throw new LowbitError("UNSUPPORTED", `Resize: input must be float32`, { node: node.name });
  }
  const rank = t.shape.length;
  const old = ctx.opset < 11;
  const scalesT = old ? inputs[1] : inputs[2];
  const sizesT = old ? undefined : inputs[3];
  let outShape: number[];
  let scales: number[];
  if (sizesT !== undefined && sizesT.data.length > 0) {
    outShape = toNumbers(sizesT);
    scales = outShape.map((o, i) => o / t.shape[i]);
  } else if (scalesT !== undefined && scalesT.data.length > 0) {
    scales = Array.from(toF32(scalesT));
    outShape = t.shape.map((d, i) => Math.floor(d * scales[i]));
  } else {
    throw new LowbitError("INVALID_ARGUMENT", "Resize: neither scales nor sizes given", {
      node: node.name,
    });
  }
  if (scales.length !== rank || outShape.length !== rank) {
    throw new LowbitError("UNSUPPORTED", `Resize: scales/sizes must cover all ${rank} axes`, {
      node: node.name,
    });
  }
  const mode = attrString(node, "mode", "nearest");
  const ctm = old ? "asymmetric" : attrString(node, "coordinate_transformation_mode", "half_pixel");
  const tf = TRANSFORMS[ctm];
  if (tf === undefined) {
    throw new LowbitError("UNSUPPORTED", `Resize: coordinate_transformation_mode '${ctm}'`, {
      node: node.name,
    });
  }
  const x = t.data as Float32Array;
  if (mode === "nearest") {
    const nm = old ? "simple" : attrString(node, "nearest_mode", "round_prefer_floor");
    const rnd = ROUNDINGS[nm];
    if (rnd === undefined) {
      throw new LowbitError("UNSUPPORTED", `Resize: nearest_mode '${nm}'`, { node: node.name });
    }
    const st = strides(t.shape);
    const maps = outShape.map((lo, a) => {
      const li = t.shape[a];
      const m = new Int32Array(lo);
      for (let i = 0; i < lo; i++) {
        const c = rnd(tf(i, scales[a], li, lo), scales[a] < 1);
        m[i] = Math.min(li - 1, Math.max(0, c)) * st[a];
      }
      return m;
    });
    const add = addend?.dtype === "float32" && sameShape(addend.shape, outShape)
      ? addend.data as Float32Array
      : undefined;
    // Every element is written below (a dying addend may take the output: read first).
    const y = add && ctx.reusable?.(addend!) ? add : outF32(ctx, size(outShape));
    const inner = outShape[rank - 1], last = maps[rank - 1];
    const outer = y.length / Math.max(1, inner);
    const row = add ? new Float32Array(inner) : y;
    const idx = new Array<number>(rank).fill(0);
    for (let r = 0, prev = -1; r < outer; r++) {
      let base = 0;
      for (let a = 0; a < rank - 1; a++) base += maps[a][idx[a]];
      if (add) {
        // The gathered row, reused while upsampling repeats it.
        if (base !== prev) gatherRow(row, 0, x, base, last, inner);
        addRow(y, r * inner, add, row, inner);
      } else if (base === prev) {
        // Upsampling repeats rows: copy the previous output row instead of gathering it again.
        y.copyWithin(r * inner, (r - 1) * inner, r * inner);
      } else gatherRow(y, r * inner, x, base, last, inner);
      prev = base;
      for (let a = rank - 2; a >= 0; a--) {
        if (++idx[a] < outShape[a]) break;
        idx[a] = 0;
      }
    }
    return { y: { dtype: "float32", shape: outShape, data: y }, added: add !== undefined };
  }
  if (mode !== "linear") {
    throw new LowbitError("UNSUPPORTED", `Resize: mode '${mode}' (nearest and linear only)`, {
      node: node.name,
    });
  }
  // Separable linear: one axis at a time.
  let cur = x;
  const shape = [...t.shape];
  for (let a = 0; a < rank; a++) {
    const li = shape[a], lo = outShape[a];
    if (li === lo && scales[a] === 1) continue;
    const i0 = new Int32Array(lo), i1 = new Int32Array(lo), f = new Float32Array(lo);
    for (let i = 0; i < lo; i++) {
      const c = Math.min(li - 1, Math.max(0, tf(i, scales[a], li, lo)));
      const lo0 = Math.min(li - 1, Math.floor(c));
      i0[i] = lo0;
      i1[i] = Math.min(li - 1, lo0 + 1);
      f[i] = c - lo0;
    }
    const outer = size(shape.slice(0, a)), inner = size(shape.slice(a + 1));
    const next = new Float32Array(outer * lo * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < lo; i++) {
        const s0 = (o * li + i0[i]) * inner, s1 = (o * li + i1[i]) * inner;
        const d = (o * lo + i) * inner, w = f[i];
        for (let j = 0; j < inner; j++) next[d + j] = cur[s0 + j] + (cur[s1 + j] - cur[s0 + j]) * w;
      }
    }
    cur = next;
    shape[a] = lo;
  }
  const y = cur === x ? x.slice() : cur;
  if (addend?.dtype === "float32" && sameShape(addend.shape, outShape)) {
    const a = addend.data as Float32Array;
    for (let i = 0; i < y.length; i++) y[i] = a[i] + y[i];
    return { y: { dtype: "float32", shape: outShape, data: y }, added: true };
  }
  return { y: { dtype: "float32", shape: outShape, data: y }, added: false };
}

const resize: OpImpl = (inputs, node, ctx) => [resizeF32(inputs, node, ctx).y];

/**
 * The resize op.
 *
 * @example
 * ```ts
 * import { resizeOps } from "./resize.ts";
 * const node = {
 *   name: "r", op: "Resize", domain: "", inputs: ["x", "", "scales"], outputs: ["y"],
 *   attrs: { mode: { kind: "string" as const, value: "nearest" } },
 * };
 * const x = { dtype: "float32" as const, shape: [1, 1, 1, 2], data: new Float32Array([1, 2]) };
 * const s = { dtype: "float32" as const, shape: [4], data: new Float32Array([1, 1, 1, 2]) };
 * const [y] = await resizeOps.Resize([x, undefined, s], node, { opset: 13 });
 * if (y.data.join() !== "1,1,2,2") throw new Error();
 * ```
 */
export const resizeOps: OpTable<"Resize"> = { Resize: resize };

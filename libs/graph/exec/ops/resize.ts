/**
 * `Resize` (and the opset-10 form) on float32 tensors of any rank: nearest
 * (round_prefer_floor / round_prefer_ceil / floor / ceil) and linear
 * and cubic (separable, one axis at a time; cubic_coeff_a, exclude_outside), with the
 * coordinate transformations half_pixel, pytorch_half_pixel, align_corners, asymmetric,
 * tf_half_pixel_for_nearest (and its older name tf_half_pixel_for_nn), tf_crop_and_resize
 * (roi, extrapolation_value) and half_pixel_symmetric.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import {
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  normAxis,
  outF32,
  size,
  strides,
  toF32,
  toNumbers,
} from "../_tensor.ts";
import type { OpContext, OpImpl, OpTable } from "./types.ts";

/**
 * Output coordinate → input coordinate. `lout` is the integer output length, as onnxruntime and
 * PyTorch use it. NOTE ONNX's Python reference uses scale × input length unrounded instead: with
 * `scales` 0.6 on 4 elements, align_corners divides by 2.4 − 1 there and by 2 − 1 here. lowbit
 * follows onnxruntime (the runtime its models are checked against, which skips those ONNX
 * node tests for that reason).
 */
type Transform = (x: number, scale: number, lin: number, lout: number) => number;

/** Keys' cubic convolution weights of the taps at floor − 1 … floor + 2 for fraction `r`. */
function cubicCoeffs(r: number, a: number): number[] {
  const far = (d: number) => ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; // 1 <= d < 2
  const near = (d: number) => ((a + 2) * d - (a + 3)) * d * d + 1; // 0 <= d < 1
  return [far(r + 1), near(r), near(1 - r), far(2 - r)];
}

const TRANSFORMS: Record<string, Transform> = {
  half_pixel: (x, s) => (x + 0.5) / s - 0.5,
  pytorch_half_pixel: (x, s, _li, lo) => (lo > 1 ? (x + 0.5) / s - 0.5 : 0),
  align_corners: (x, _s, li, lo) => (lo === 1 ? 0 : (x * (li - 1)) / (lo - 1)),
  asymmetric: (x, s) => x / s,
  tf_half_pixel_for_nearest: (x, s) => (x + 0.5) / s,
  tf_half_pixel_for_nn: (x, s) => (x + 0.5) / s,
  // The ROI form is computed in resizeF32 (it needs the roi input); this is its no-ROI reading.
  tf_crop_and_resize: (x, _s, li, lo) => (lo > 1 ? (x * (li - 1)) / (lo - 1) : 0),
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
  // Opset 18: `axes` names the axes scales / sizes / roi cover (the others keep their size).
  const axesAttr = old ? undefined : attrInts(node, "axes");
  const axes = axesAttr?.map((a) => normAxis(a, rank, node)) ?? t.shape.map((_, i) => i);
  const full = (part: number[], fill: number): number[] => {
    if (part.length !== axes.length) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `Resize: scales/sizes have ${part.length} values for ${axes.length} axes`,
        { node: node.name },
      );
    }
    const r = new Array<number>(rank).fill(fill);
    axes.forEach((a, i) => (r[a] = part[i]));
    return r;
  };
  if (sizesT !== undefined && sizesT.data.length > 0) {
    outShape = full(toNumbers(sizesT), NaN).map((o, i) => (Number.isNaN(o) ? t.shape[i] : o));
    scales = outShape.map((o, i) => o / t.shape[i]);
    const policy = old ? "stretch" : attrString(node, "keep_aspect_ratio_policy", "stretch");
    if (policy === "not_larger" || policy === "not_smaller") {
      // One scale for every resized axis (ONNX's reference: sizes rounded half up).
      const rs = axes.map((a) => scales[a]);
      const sc = policy === "not_larger" ? Math.min(...rs) : Math.max(...rs);
      for (const a of axes) {
        scales[a] = sc;
        outShape[a] = Math.floor(sc * t.shape[a] + 0.5);
      }
    } else if (policy !== "stretch") {
      throw new LowbitError("UNSUPPORTED", `Resize: keep_aspect_ratio_policy '${policy}'`, {
        node: node.name,
      });
    }
  } else if (scalesT !== undefined && scalesT.data.length > 0) {
    scales = full(Array.from(toF32(scalesT)), 1);
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
  if (!old && attrInt(node, "antialias", 0) === 1 && scales.some((v) => v < 1)) {
    // Antialiased downsampling widens the filter; refuse rather than compute plain resampling.
    throw new LowbitError("UNSUPPORTED", "Resize: antialias = 1 when downsampling", {
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
  if (mode !== "linear" && mode !== "cubic") {
    throw new LowbitError("UNSUPPORTED", `Resize: mode '${mode}' (nearest, linear, cubic)`, {
      node: node.name,
    });
  }
  // Separable linear / cubic: one axis at a time, each output a weighted sum of input taps.
  const cubicA = attrFloat(node, "cubic_coeff_a", -0.75);
  const exclude = attrInt(node, "exclude_outside", 0) === 1;
  const extrapolation = attrFloat(node, "extrapolation_value", 0);
  const roiPart = ctm === "tf_crop_and_resize" && inputs[1] !== undefined && !old
    ? Array.from(toF32(inputs[1]))
    : undefined;
  // roi = [starts…, ends…] over `axes`; other axes take the whole extent [0, 1].
  const roi = roiPart === undefined ? undefined : [
    ...full(roiPart.slice(0, roiPart.length / 2), 0),
    ...full(roiPart.slice(roiPart.length / 2), 1),
  ];
  let cur = x;
  const shape = [...t.shape];
  for (let a = 0; a < rank; a++) {
    const li = shape[a], lo = outShape[a];
    if (li === lo && scales[a] === 1 && roi === undefined) continue;
    const taps = mode === "linear" ? 2 : 4;
    const idx = new Int32Array(lo * taps), w = new Float64Array(lo * taps);
    const outside = new Uint8Array(lo);
    for (let i = 0; i < lo; i++) {
      let c: number;
      if (roi !== undefined) {
        const r0 = roi[a], r1 = roi[rank + a];
        c = lo > 1
          ? r0 * (li - 1) + (i * (r1 - r0) * (li - 1)) / (lo - 1)
          : 0.5 * (r0 + r1) * (li - 1);
        if (c < 0 || c > li - 1) {
          outside[i] = 1;
          continue;
        }
      } else c = tf(i, scales[a], li, lo);
      if (mode === "linear") c = Math.min(li - 1, Math.max(0, c));
      const f = Math.floor(c), r = c - f;
      const ws = mode === "linear" ? [1 - r, r] : cubicCoeffs(r, cubicA);
      const first = mode === "linear" ? f : f - 1;
      let sum = 0;
      for (let k = 0; k < taps; k++) {
        const j = first + k;
        if (exclude && (j < 0 || j >= li)) ws[k] = 0;
        sum += ws[k];
      }
      for (let k = 0; k < taps; k++) {
        idx[i * taps + k] = Math.min(li - 1, Math.max(0, first + k));
        w[i * taps + k] = exclude ? ws[k] / sum : ws[k];
      }
    }
    const outer = size(shape.slice(0, a)), inner = size(shape.slice(a + 1));
    const next = new Float32Array(outer * lo * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < lo; i++) {
        const d = (o * lo + i) * inner;
        if (outside[i]) {
          next.fill(extrapolation, d, d + inner);
          continue;
        }
        if (taps === 2) {
          // The two-tap form the linear mode always used (same bits as before).
          const s0 = (o * li + idx[i * 2]) * inner, s1 = (o * li + idx[i * 2 + 1]) * inner;
          const f = Math.fround(w[i * 2 + 1]);
          for (let j = 0; j < inner; j++) {
            next[d + j] = cur[s0 + j] + (cur[s1 + j] - cur[s0 + j]) * f;
          }
          continue;
        }
        for (let j = 0; j < inner; j++) {
          let v = 0;
          for (let k = 0; k < taps; k++) {
            v += w[i * taps + k] * cur[(o * li + idx[i * taps + k]) * inner + j];
          }
          next[d + j] = v;
        }
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

/** Upsample (deprecated): Resize-10's semantics, scales as input (opset 9) or attribute (7). */
const upsample: OpImpl = (inputs, node, ctx) => {
  const a = node.attrs.scales;
  const scales: TensorData | undefined = inputs[1] ??
    (a?.kind === "floats"
      ? { dtype: "float32", shape: [a.value.length], data: Float32Array.from(a.value) }
      : undefined);
  return [resizeF32([inputs[0], scales], node, { ...ctx, opset: 10 }).y];
};

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
export const resizeOps: OpTable<"Resize" | "Upsample"> = { Resize: resize, Upsample: upsample };

/**
 * Convolutions on float32 NCHW (and NCW) tensors: `Conv` with groups,
 * depthwise, dilations, pads and auto_pad; `ConvTranspose` with output_padding
 * and output_shape. Dense groups run as im2col + GEMM (1×1 stride-1 convs skip
 * im2col); depthwise convs run as direct loops.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { qdqFp8F32 } from "@lowbit/kernels";
import type { Node, TensorData } from "../../ir.ts";
import { attrInt, attrInts, attrString, fusedClamp, outF32, toF32 } from "../_tensor.ts";
import { forwardWindow, pointwiseWindow, spatial2d, type Window2d } from "./_conv_geom.ts";
import { backendKernels, convF32Threaded, matmulF32Threaded } from "./_float_backend.ts";
import { applyPost, convPost } from "./_post.ts";
import { transpose2d } from "./matmul.ts";
import { sgemm } from "./_sgemm.ts";
import type { OpImpl, OpTable } from "./types.ts";

function need(node: Node, t: TensorData | undefined, what: string): TensorData {
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

/**
 * im2col of one group of one image: rows (ci, ki, kj), columns output pixels;
 * padding reads as 0. Works on any numeric typed array (float32 data, integer codes).
 *
 * @param x the image (channels × h × w from `xOff`)
 * @param xOff offset of the group's first channel
 * @param cin channels in the group
 * @param g window geometry
 * @param col destination, (cin·kh·kw) × (oh·ow)
 *
 * @example
 * ```ts
 * import { im2col } from "./conv.ts";
 * const g = { h: 1, w: 2, kh: 1, kw: 2, sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 1, pb: 0, pr: 0, oh: 1, ow: 2 };
 * const col = new Float32Array(4);
 * im2col(new Float32Array([5, 6]), 0, 1, g, col);
 * if (col.join() !== "0,5,5,6") throw new Error(col.join());
 * ```
 */
export function im2col<T extends Float32Array | Int16Array | Int8Array | Uint8Array>(
  xIn: T,
  xOff: number,
  cin: number,
  g: Window2d,
  colOut: T,
): void {
  // The typed-array methods used here are generic; one body serves every element type.
  const x = xIn as unknown as Float32Array, col = colOut as unknown as Float32Array;
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  const ohw = oh * ow;
  for (let ci = 0; ci < cin; ci++) {
    const xc = xOff + ci * h * w;
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        const row = ((ci * kh + ki) * kw + kj) * ohw;
        const dx = kj * dw - pl;
        // Valid ox: 0 <= ox*sw + dx < w.
        const ox0 = Math.min(ow, Math.max(0, Math.ceil(-dx / sw)));
        const ox1 = Math.min(ow, Math.max(ox0, Math.floor((w - 1 - dx) / sw) + 1));
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh + ki * dh - pt;
          const r = row + oy * ow;
          if (iy < 0 || iy >= h) {
            col.fill(0, r, r + ow);
            continue;
          }
          const xr = xc + iy * w + dx;
          for (let ox = 0; ox < ox0; ox++) col[r + ox] = 0;
          if (sw === 1) col.set(x.subarray(xr + ox0, xr + ox1), r + ox0);
          else for (let ox = ox0; ox < ox1; ox++) col[r + ox] = x[xr + ox * sw];
          for (let ox = ox1; ox < ow; ox++) col[r + ox] = 0;
        }
      }
    }
  }
}

/** Depthwise conv of one channel plane into `out` (which holds the bias or 0). */
function depthwisePlane(
  x: Float32Array,
  xOff: number,
  wt: Float32Array,
  wOff: number,
  g: Window2d,
  out: Float32Array,
  oOff: number,
): void {
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  for (let ki = 0; ki < kh; ki++) {
    for (let kj = 0; kj < kw; kj++) {
      const wv = wt[wOff + ki * kw + kj];
      const dx = kj * dw - pl;
      const ox0 = Math.min(ow, Math.max(0, Math.ceil(-dx / sw)));
      const ox1 = Math.min(ow, Math.max(ox0, Math.floor((w - 1 - dx) / sw) + 1));
      for (let oy = 0; oy < oh; oy++) {
        const iy = oy * sh + ki * dh - pt;
        if (iy < 0 || iy >= h) continue;
        const xr = xOff + iy * w + dx;
        const orow = oOff + oy * ow;
        if (sw === 1) {
          for (let ox = ox0; ox < ox1; ox++) out[orow + ox] += wv * x[xr + ox];
        } else {
          for (let ox = ox0; ox < ox1; ox++) out[orow + ox] += wv * x[xr + ox * sw];
        }
      }
    }
  }
}

/**
 * Float32 2-D convolution (NCHW, weights [Cout, Cin/group, kh, kw]).
 *
 * @example
 * ```ts
 * import { conv2dRef } from "./conv.ts";
 * const g = { h: 1, w: 2, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 0, pb: 0, pr: 0, oh: 1, ow: 2 };
 * const y = conv2dRef(new Float32Array([1, 2]), new Float32Array([3]), undefined, 1, 1, 1, 1, g);
 * if (y.join() !== "3,6") throw new Error();
 * ```
 *
 * @param x input data, n × cin × h × w
 * @param wt weights
 * @param bias per output channel, or undefined
 * @param n batch
 * @param cin input channels
 * @param cout output channels
 * @param group groups
 * @param g window geometry
 * @returns output data, n × cout × oh × ow
 */
export function conv2dRef(
  x: Float32Array,
  wt: Float32Array,
  bias: Float32Array | undefined,
  n: number,
  cin: number,
  cout: number,
  group: number,
  g: Window2d,
): Float32Array {
  const { h, w, kh, kw, oh, ow } = g;
  const ohw = oh * ow, hw = h * w;
  const cinG = cin / group, coutG = cout / group;
  const kk = cinG * kh * kw;
  const out = new Float32Array(n * cout * ohw);
  const depthwise = cinG === 1 && coutG === 1;
  const pointwise = kh === 1 && kw === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 &&
    g.pl === 0 && g.pb === 0 && g.pr === 0;
  const col = depthwise || pointwise ? undefined : new Float32Array(kk * ohw);
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < group; gi++) {
      const xOff = (b * cin + gi * cinG) * hw;
      const oOff = (b * cout + gi * coutG) * ohw;
      if (depthwise) {
        if (bias) out.fill(bias[gi], oOff, oOff + ohw);
        depthwisePlane(x, xOff, wt, gi * kh * kw, g, out, oOff);
        continue;
      }
      let bSrc = x, bOff = xOff;
      if (col) {
        im2col(x, xOff, cinG, g, col);
        bSrc = col;
        bOff = 0;
      }
      sgemm(coutG, ohw, kk, wt, gi * coutG * kk, kk, bSrc, bOff, ohw, out, oOff, ohw, false);
      if (bias) {
        for (let c = 0; c < coutG; c++) {
          const bv = bias[gi * coutG + c];
          const o = oOff + c * ohw;
          for (let i = 0; i < ohw; i++) out[o + i] += bv;
        }
      }
    }
  }
  return out;
}

const conv: OpImpl = async (inputs, node, ctx) => {
  const xt = need(node, inputs[0], "input X");
  const wt = need(node, inputs[1], "weight W");
  const bt = inputs[2] === undefined ? undefined : need(node, inputs[2], "bias B");
  const group = attrInt(node, "group", 1);
  const [n, cin] = xt.shape;
  const cout = wt.shape[0];
  if (wt.shape.length !== xt.shape.length || wt.shape[1] * group !== cin || cout % group !== 0) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `Conv: input [${xt.shape}] and weight [${wt.shape}] disagree (group ${group})`,
      { node: node.name },
    );
  }
  const [kh, kw] = spatial2d(wt.shape, node);
  const g = forwardWindow(node, xt.shape, [kh, kw]);
  let post = convPost(node);
  // A float8 Q → DQ (lowbit_qdq8) as the only post-op of a batch: the conv without it and one
  // pass after (the same values). Post-ops take the kernels' split entry points, which on
  // batches of small images measured slower than the plain conv (digits CNN b64 fp8: the stem
  // and depthwise convs +0.2 ms each, the pass 0.03–0.14 ms); alone (batch 1) they measured faster.
  const after = post?.qdqFp8 !== undefined && n > 1 && Object.keys(post).length === 1
    ? post.qdqFp8
    : undefined;
  if (after !== undefined) post = undefined;
  const y = await convF32Threaded(
    xt.data as Float32Array,
    wt.data as Float32Array,
    bt ? toF32(bt) : undefined,
    n,
    cin,
    cout,
    group,
    g,
    {
      reference: ctx.reference ?? false,
      constant: ctx.isConstant?.(wt) ?? false,
      clamp: fusedClamp(node),
      post,
      kernels: ctx.floatKernels,
      alloc: ctx.allocF32,
    },
    conv2dRef,
  );
  if (after !== undefined) {
    const k = ctx.reference ? null : ctx.floatKernels ?? backendKernels();
    if (k !== null) qdqFp8F32(y, after.scale, after.format, { out: y, kernels: k });
    else applyPost(y, { qdqFp8: after });
  }
  const shape = xt.shape.length === 3 ? [n, cout, g.ow] : [n, cout, g.oh, g.ow];
  return [{ dtype: "float32", shape, data: y }];
};

// NOTE hot loops live in small functions of their own: they get optimised once and
// stay monomorphic, instead of depending on on-stack replacement inside one big op.

/** Stride = kernel, no padding: every output pixel gets one term; rows written in order. */
function scatterDisjoint(
  y: Float32Array,
  yo: number,
  cols: Float32Array,
  c0: number,
  bv: number,
  h: number,
  w: number,
  kh: number,
  kw: number,
  hw: number,
): void {
  const ow = w * kw;
  for (let iy = 0; iy < h; iy++) {
    for (let ki = 0; ki < kh; ki++) {
      const yr = yo + (iy * kh + ki) * ow;
      const cr = c0 + ki * kw * hw + iy * w;
      for (let kj = 0; kj < kw; kj++) {
        const src = cr + kj * hw;
        for (let ix = 0; ix < w; ix++) y[yr + ix * kw + kj] = cols[src + ix] + bv;
      }
    }
  }
}

/** y[ki·kw + kj plane of 1 channel] ← z planes (ki, kj): y[iy·kh + ki][ix·kw + kj] = z[ki][kj][iy][ix]. */
function depthToSpace(
  y: Float32Array,
  yo: number,
  z: Float32Array,
  zo: number,
  h: number,
  w: number,
  kh: number,
  kw: number,
): void {
  const ow = w * kw, hw = h * w;
  for (let iy = 0; iy < h; iy++) {
    for (let ki = 0; ki < kh; ki++) {
      const yr = yo + (iy * kh + ki) * ow;
      const zr = zo + ki * kw * hw + iy * w;
      // Output rows written in order (kw = 2, the common upsampling head, unrolled).
      if (kw === 2) {
        for (let ix = 0, o = yr; ix < w; ix++, o += 2) {
          y[o] = z[zr + ix];
          y[o + 1] = z[zr + hw + ix];
        }
      } else {
        for (let ix = 0; ix < w; ix++) {
          for (let kj = 0; kj < kw; kj++) y[yr + ix * kw + kj] = z[zr + kj * hw + ix];
        }
      }
    }
  }
}

/** General col2im: scatter-adds the rows (co, ki, kj) of cols into output channel co. */
function scatterGeneral(
  y: Float32Array,
  yo: number,
  cols: Float32Array,
  co: number,
  _bv: number,
  g: Omit<Window2d, "pb" | "pr">,
): void {
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  const hw = h * w;
  for (let ki = 0; ki < kh; ki++) {
    for (let kj = 0; kj < kw; kj++) {
      const cr = ((co * kh + ki) * kw + kj) * hw;
      const dx = kj * dw - pl;
      // Valid ix: 0 <= ix*sw + dx < ow.
      const ix0 = Math.min(w, Math.max(0, Math.ceil(-dx / sw)));
      const ix1 = Math.min(w, Math.max(ix0, Math.floor((ow - 1 - dx) / sw) + 1));
      for (let iy = 0; iy < h; iy++) {
        const oy = iy * sh + ki * dh - pt;
        if (oy < 0 || oy >= oh) continue;
        const yr = yo + oy * ow + dx;
        const cr2 = cr + iy * w;
        for (let ix = ix0; ix < ix1; ix++) y[yr + ix * sw] += cols[cr2 + ix];
      }
    }
  }
}

/** Clamps every element to [lo, hi]. */
function clampInPlace(y: Float32Array, lo: number, hi: number): void {
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
  }
}

const convTranspose: OpImpl = async (inputs, node, ctx) => {
  const xt = need(node, inputs[0], "input X");
  const wt = need(node, inputs[1], "weight W");
  const bt = inputs[2] === undefined ? undefined : need(node, inputs[2], "bias B");
  const group = attrInt(node, "group", 1);
  const [n, cin] = xt.shape;
  const nd = xt.shape.length - 2;
  if (wt.shape[0] !== cin || wt.shape.length !== xt.shape.length || cin % group !== 0) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `ConvTranspose: input [${xt.shape}] and weight [${wt.shape}] disagree`,
      { node: node.name },
    );
  }
  const coutG = wt.shape[1];
  const cout = coutG * group;
  const cinG = cin / group;
  const [h, w] = spatial2d(xt.shape, node);
  const [kh, kw] = spatial2d(wt.shape, node);
  const as2 = (v: number[] | undefined, d: number): [number, number] =>
    v === undefined ? [d, d] : nd === 1 ? [d, v[0]] : [v[0], v[1]];
  const [sh, sw] = as2(attrInts(node, "strides"), 1);
  const [dh, dw] = as2(attrInts(node, "dilations"), 1);
  const [oph, opw] = as2(attrInts(node, "output_padding"), 0);
  let pads = attrInts(node, "pads") ?? new Array<number>(2 * nd).fill(0);
  if (nd === 1) pads = [0, pads[0], 0, pads[1]];
  const outShapeAttr = attrInts(node, "output_shape");
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  const ins = [h, w], ss = [sh, sw], ds = [dh, dw], ks = [kh, kw], ops = [oph, opw];
  const out = [0, 0], begin = [0, 0];
  for (let i = 0; i < 2; i++) {
    const full = (ins[i] - 1) * ss[i] + ops[i] + (ks[i] - 1) * ds[i] + 1;
    const target = outShapeAttr !== undefined
      ? (nd === 1
        ? (i === 0 ? 1 : outShapeAttr[outShapeAttr.length - 1])
        : outShapeAttr[outShapeAttr.length - 2 + i])
      : undefined;
    if (target !== undefined || autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
      out[i] = target ?? ins[i] * ss[i];
      const total = Math.max(0, full - out[i]);
      // As onnxruntime: SAME_UPPER pads more at the end, SAME_LOWER / NOTSET at the start.
      begin[i] = autoPad === "SAME_UPPER" ? Math.floor(total / 2) : Math.ceil(total / 2);
    } else {
      begin[i] = pads[i];
      out[i] = full - pads[i] - pads[i + 2];
    }
  }
  const [oh, ow] = out;
  const [pt, pl] = begin;
  const x = xt.data as Float32Array, wd = wt.data as Float32Array;
  const y = outF32(ctx, n * cout * oh * ow); // every element is written below
  const hw = h * w, khw = kh * kw, ohw = oh * ow;
  // cols[(co, ki, kj), pixel] = Σ_ci Wᵀ[(co, ki, kj), ci] · x[ci, pixel], then every row of
  // cols scatter-adds into the output (reads stay sequential).
  const rows = coutG * khw;
  const bias = bt ? toF32(bt) : undefined;
  const disjoint = sh === kh && sw === kw && dh === 1 && dw === 1 && pt === 0 && pl === 0 &&
    oh === h * sh && ow === w * sw;
  // Elementwise post-ops (the reader's int8 Q → DQ pair, `lowbit_qdq`): in the kernel's epilogue
  // on the disjoint path (they commute with depth-to-space), after the clamp otherwise.
  const post = convPost(node);
  if (disjoint && group === 1) {
    // Every output pixel gets one term per input channel: a 1×1 conv with an output channel per
    // (co, ki, kj) — the same sums in the same order, bias and clamp in its epilogue, threaded —
    // then depth-to-space into the output.
    const wT = transpose2d(wd, cin, rows);
    const rowBias = new Float32Array(rows);
    if (bias) { for (let r = 0; r < rows; r++) rowBias[r] = bias[Math.floor(r / khw)]; }
    const z = await convF32Threaded(x, wT, rowBias, n, cin, rows, 1, pointwiseWindow(h, w), {
      reference: ctx.reference ?? false,
      constant: ctx.isConstant?.(wt) ?? false,
      clamp: fusedClamp(node),
      post,
      kernels: ctx.floatKernels,
      alloc: ctx.allocF32,
    }, conv2dRef);
    for (let b = 0; b < n; b++) {
      for (let co = 0; co < cout; co++) {
        depthToSpace(y, (b * cout + co) * ohw, z, (b * rows + co * khw) * hw, h, w, kh, kw);
      }
    }
    ctx.releaseF32?.(z);
    const shape = nd === 1 ? [n, cout, ow] : [n, cout, oh, ow];
    return [{ dtype: "float32", shape, data: y }];
  }
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < group; gi++) {
      const xo = (b * cin + gi * cinG) * hw;
      const wg = group === 1 ? wd : wd.slice(gi * cinG * rows, (gi + 1) * cinG * rows);
      const wT = transpose2d(wg, cinG, rows);
      const cols = await matmulF32Threaded(wT, rows, x, xo, cinG, hw, "kn", undefined, {
        reference: ctx.reference ?? false,
        constant: false,
        kernels: ctx.floatKernels,
      });
      for (let co = 0; co < coutG; co++) {
        const yo = (b * cout + gi * coutG + co) * ohw;
        const bv = bias ? bias[gi * coutG + co] : 0;
        if (disjoint) scatterDisjoint(y, yo, cols, co * khw * hw, bv, h, w, kh, kw, hw);
        else {
          y.fill(bv, yo, yo + ohw);
          scatterGeneral(y, yo, cols, co, bv, { h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow });
        }
      }
    }
  }
  const clamp = fusedClamp(node);
  if (clamp) clampInPlace(y, clamp[0], clamp[1]);
  if (post) applyPost(y, post);
  const shape = nd === 1 ? [n, cout, ow] : [n, cout, oh, ow];
  return [{ dtype: "float32", shape, data: y }];
};

/**
 * Convolution ops, by name.
 *
 * @example
 * ```ts
 * import { convOps } from "./conv.ts";
 * const node = {
 *   name: "c", op: "Conv", domain: "", inputs: ["x", "w"], outputs: ["y"],
 *   attrs: { pads: { kind: "ints" as const, value: [1, 1, 1, 1] } },
 * };
 * const x = { dtype: "float32" as const, shape: [1, 1, 2, 2], data: new Float32Array([1, 2, 3, 4]) };
 * const w = { dtype: "float32" as const, shape: [1, 1, 3, 3], data: new Float32Array(9).fill(1) };
 * const [y] = await convOps.Conv([x, w], node, { opset: 17 });
 * if (y.shape.join() !== "1,1,2,2" || y.data[0] !== 10) throw new Error();
 * ```
 */
export const convOps: OpTable<"Conv" | "ConvTranspose"> = {
  Conv: conv,
  ConvTranspose: convTranspose,
};

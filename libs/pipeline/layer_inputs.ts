/**
 * A layer's captured input as the rows its weight multiplies: Gemm / MatMul
 * inputs flattened to [rows, K]; Conv inputs unfolded (im2col) to
 * [N·OH·OW, I/g·kh·kw] per group, matching the [out, in] weight view of
 * `layers.ts`. GPTQ's Hessian and bias correction's input means come from here.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "@lowbit/graph";
import type { Layer } from "./layers.ts";

/** The rows of one weight group (conv group; 0 for everything else). */
export interface InputRows {
  /** Conv group index (0 unless grouped). */
  group: number;
  /** Number of rows. */
  rows: number;
  /** rows × layer.in values. */
  data: Float32Array;
}

function ints(n: Node, name: string): number[] | undefined {
  const a = n.attrs[name];
  return a && a.kind === "ints" ? a.value : undefined;
}

function strAttr(n: Node, name: string): string | undefined {
  const a = n.attrs[name];
  return a && a.kind === "string" ? a.value : undefined;
}

/**
 * Unfolds a layer's input into the rows its [out, in] weight view multiplies.
 *
 * @param layer the layer
 * @param node its graph node (for Conv attributes)
 * @param x the captured input
 * @param maxRows at most this many rows per group: every k-th row (output position) is
 *   kept, evenly strided, so large feature maps stay cheap (default: all rows)
 * @returns one entry per conv group (one entry otherwise)
 *
 * @example
 * ```ts
 * import { layerInputRows } from "@lowbit/pipeline";
 * const layer = { node: "c", op: "Conv", input: "x", weight: "W", shape: [1, 1, 2, 2],
 *   outAxis: 0, inAxis: 1, window: 4, groups: 1, out: 1, in: 4 };
 * const node = { name: "c", op: "Conv", domain: "", inputs: ["x", "W"], outputs: ["y"], attrs: {} };
 * const x = { dtype: "float32" as const, shape: [1, 1, 3, 3], data: new Float32Array(9).map((_, i) => i) };
 * const [g] = layerInputRows(layer, node, x);
 * if (g.rows !== 4 || g.data.slice(0, 4).join() !== "0,1,3,4") throw new Error(g.data.join());
 * ```
 */
export function layerInputRows(
  layer: Layer,
  node: Node,
  x: TensorData,
  maxRows = Infinity,
): InputRows[] {
  const data = x.data as Float32Array;
  if (layer.op === "Gemm" || layer.op === "MatMul") {
    const k = layer.in;
    if (data.length % k !== 0) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `input [${x.shape}] does not end in ${k}`,
        { node: layer.node },
      );
    }
    const all = data.length / k;
    if (all <= maxRows) return [{ group: 0, rows: all, data }];
    const step = Math.ceil(all / maxRows), rows = Math.ceil(all / step);
    const out = new Float32Array(rows * k);
    for (let r = 0; r < rows; r++) out.set(data.subarray(r * step * k, (r * step + 1) * k), r * k);
    return [{ group: 0, rows, data: out }];
  }
  if (layer.op === "Conv" && x.shape.length === 3 && layer.shape.length === 3) {
    // A 1-D Conv is the 2-D one with a height of 1: [N, C, W] → [N, C, 1, W].
    const [s, d, p] = [ints(node, "strides"), ints(node, "dilations"), ints(node, "pads")];
    const attrs = { ...node.attrs };
    if (s) attrs.strides = { kind: "ints", value: [1, s[0]] };
    if (d) attrs.dilations = { kind: "ints", value: [1, d[0]] };
    if (p) attrs.pads = { kind: "ints", value: [0, p[0], 0, p[1]] };
    const [n, c, w] = x.shape;
    return layerInputRows(
      { ...layer, shape: [layer.shape[0], layer.shape[1], 1, layer.shape[2]] },
      { ...node, attrs },
      { ...x, shape: [n, c, 1, w] },
      maxRows,
    );
  }
  if (layer.op !== "Conv" || x.shape.length !== 4 || layer.shape.length !== 4) {
    throw new LowbitError(
      "UNSUPPORTED",
      `unfolding inputs of ${layer.op} with ${x.shape.length - 2}-D input is not supported`,
      { node: layer.node },
    );
  }
  const [N, C, H, W] = x.shape;
  const [, ig, kh, kw] = layer.shape;
  const G = layer.groups;
  const [sh, sw] = ints(node, "strides") ?? [1, 1];
  const [dh, dw] = ints(node, "dilations") ?? [1, 1];
  let [pt, pl, pb, pr] = ints(node, "pads") ?? [0, 0, 0, 0];
  const autoPad = strAttr(node, "auto_pad") ?? "NOTSET";
  if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    const pad = (size: number, k: number, s: number, d: number): [number, number] => {
      const out = Math.ceil(size / s);
      const total = Math.max(0, (out - 1) * s + (k - 1) * d + 1 - size);
      const small = Math.floor(total / 2);
      return autoPad === "SAME_UPPER" ? [small, total - small] : [total - small, small];
    };
    [pt, pb] = pad(H, kh, sh, dh);
    [pl, pr] = pad(W, kw, sw, dw);
  } else if (autoPad === "VALID") {
    pt =
      pl =
      pb =
      pr =
        0;
  }
  const OH = Math.floor((H + pt + pb - (dh * (kh - 1) + 1)) / sh) + 1;
  const OW = Math.floor((W + pl + pr - (dw * (kw - 1) + 1)) / sw) + 1;
  if (C !== ig * G) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `input has ${C} channels, the weight expects ${ig} × ${G} groups`,
      { node: layer.node },
    );
  }
  const cols = ig * kh * kw;
  const all = N * OH * OW;
  const step = all <= maxRows ? 1 : Math.ceil(all / maxRows);
  const out: InputRows[] = [];
  for (let g = 0; g < G; g++) {
    const rows = Math.ceil(all / step);
    const buf = new Float32Array(rows * cols);
    let r = 0;
    for (let p = 0; p < all; p += step, r++) {
      const n = Math.floor(p / (OH * OW)), oy = Math.floor(p / OW) % OH, ox = p % OW;
      const o = r * cols;
      for (let c = 0; c < ig; c++) {
        const plane = (n * C + g * ig + c) * H * W;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - pt + ky * dh;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - pl + kx * dw;
            buf[o + (c * kh + ky) * kw + kx] = iy >= 0 && iy < H && ix >= 0 && ix < W
              ? data[plane + iy * W + ix]
              : 0;
          }
        }
      }
    }
    out.push({ group: g, rows, data: buf });
  }
  return out;
}

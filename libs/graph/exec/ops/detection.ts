/**
 * Detection and sampling ops: NonMaxSuppression, RoiAlign (avg / max, half_pixel and
 * output_half_pixel), GridSample (2-D; bilinear, nearest, bicubic; zeros, border, reflection
 * padding; align_corners). They follow onnxruntime's CPU kernels step for step, computing in
 * float64 and storing float32.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrFloat, attrInt, attrString, toF32, toNumbers } from "../_tensor.ts";
import type { OpImpl, OpTable } from "./types.ts";

function need(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

function float32(node: Node, t: TensorData, what: string): Float32Array {
  if (t.dtype !== "float32") {
    throw new LowbitError("UNSUPPORTED", `${node.op}: ${what} must be float32, got ${t.dtype}`, {
      node: node.name,
    });
  }
  return t.data as Float32Array;
}

// *** NonMaxSuppression ***

/** [ymin, xmin, ymax, xmax] of box `i` (corner or center form). */
function corners(b: Float32Array, i: number, center: boolean): [number, number, number, number] {
  const a = b[i * 4], c = b[i * 4 + 1], d = b[i * 4 + 2], e = b[i * 4 + 3];
  if (center) return [c - e / 2, a - d / 2, c + e / 2, a + d / 2];
  return [Math.min(a, d), Math.min(c, e), Math.max(a, d), Math.max(c, e)];
}

function iou(p: number[], q: number[]): number {
  const ih = Math.min(p[2], q[2]) - Math.max(p[0], q[0]);
  const iw = Math.min(p[3], q[3]) - Math.max(p[1], q[1]);
  if (ih <= 0 || iw <= 0) return 0;
  const inter = ih * iw;
  const ap = (p[2] - p[0]) * (p[3] - p[1]), aq = (q[2] - q[0]) * (q[3] - q[1]);
  if (ap <= 0 || aq <= 0) return 0;
  return inter / (ap + aq - inter);
}

const nms: OpImpl = (inputs, node) => {
  const bt = need(node, inputs[0], "boxes"), st = need(node, inputs[1], "scores");
  const boxes = float32(node, bt, "boxes"), scores = float32(node, st, "scores");
  const maxOut = inputs[2] && inputs[2].data.length > 0 ? toNumbers(inputs[2])[0] : 0;
  const iouT = inputs[3] && inputs[3].data.length > 0 ? toF32(inputs[3])[0] : 0;
  const scoreT = inputs[4] && inputs[4].data.length > 0 ? toF32(inputs[4])[0] : -Infinity;
  const center = attrInt(node, "center_point_box", 0) === 1;
  const [nb, n] = bt.shape;
  const nc = st.shape[1];
  if (bt.shape.length !== 3 || bt.shape[2] !== 4 || st.shape[0] !== nb || st.shape[2] !== n) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `NonMaxSuppression: boxes [${bt.shape}] and scores [${st.shape}] do not match`,
      { node: node.name },
    );
  }
  const sel: number[] = [];
  for (let b = 0; b < nb; b++) {
    const cs = Array.from({ length: n }, (_, i) => corners(boxes, b * n + i, center));
    for (let c = 0; c < nc; c++) {
      if (maxOut <= 0) continue;
      const base = (b * nc + c) * n;
      const cand: number[] = [];
      for (let i = 0; i < n; i++) if (scores[base + i] > scoreT) cand.push(i);
      cand.sort((x, y) => scores[base + y] - scores[base + x] || x - y);
      const kept: number[] = [];
      for (const i of cand) {
        if (kept.length >= maxOut) break;
        if (kept.every((k) => iou(cs[k], cs[i]) <= iouT)) {
          kept.push(i);
          sel.push(b, c, i);
        }
      }
    }
  }
  return [{
    dtype: "int64",
    shape: [sel.length / 3, 3],
    data: BigInt64Array.from(sel, (v) => BigInt(v)),
  }];
};

// *** RoiAlign ***

const roiAlign: OpImpl = (inputs, node, ctx) => {
  const xt = need(node, inputs[0], "X"), rt = need(node, inputs[1], "rois");
  const x = float32(node, xt, "X"), rois = float32(node, rt, "rois");
  const bidx = toNumbers(need(node, inputs[2], "batch_indices"));
  const [, c, h, w] = xt.shape;
  const ph = attrInt(node, "output_height", 1), pw = attrInt(node, "output_width", 1);
  const ratio = attrInt(node, "sampling_ratio", 0);
  const scale = attrFloat(node, "spatial_scale", 1);
  const max = attrString(node, "mode", "avg") === "max";
  const ctm = attrString(
    node,
    "coordinate_transformation_mode",
    ctx.opset >= 16 ? "half_pixel" : "output_half_pixel",
  );
  const half = ctm === "half_pixel";
  const nr = rt.shape[0];
  const y = new Float32Array(nr * c * ph * pw);
  for (let r = 0; r < nr; r++) {
    const b = bidx[r];
    if (!(b >= 0 && b < xt.shape[0])) {
      throw new LowbitError("INVALID_ARGUMENT", `RoiAlign: batch index ${b} out of range`, {
        node: node.name,
      });
    }
    const off = half ? 0.5 : 0;
    const sw = rois[r * 4] * scale - off, sh = rois[r * 4 + 1] * scale - off;
    const ew = rois[r * 4 + 2] * scale - off, eh = rois[r * 4 + 3] * scale - off;
    const rw = half ? ew - sw : Math.max(ew - sw, 1), rh = half ? eh - sh : Math.max(eh - sh, 1);
    const bh = rh / ph, bw = rw / pw;
    const gh = ratio > 0 ? ratio : Math.ceil(rh / ph), gw = ratio > 0 ? ratio : Math.ceil(rw / pw);
    const count = Math.max(gh * gw, 1);
    for (let ch = 0; ch < c; ch++) {
      const img = (b * c + ch) * h * w;
      for (let i = 0; i < ph; i++) {
        for (let j = 0; j < pw; j++) {
          let acc = 0, best = -Infinity, first = true;
          for (let iy = 0; iy < gh; iy++) {
            const yy = sh + i * bh + ((iy + 0.5) * bh) / gh;
            for (let ix = 0; ix < gw; ix++) {
              const xx = sw + j * bw + ((ix + 0.5) * bw) / gw;
              let v1 = 0, v2 = 0, v3 = 0, v4 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0;
              if (!(yy < -1 || yy > h || xx < -1 || xx > w)) {
                let y0 = Math.trunc(Math.max(yy, 0)), x0 = Math.trunc(Math.max(xx, 0));
                let y1: number, x1: number;
                let ys = Math.max(yy, 0), xs = Math.max(xx, 0);
                if (y0 >= h - 1) (y1 = y0 = h - 1), (ys = y0);
                else y1 = y0 + 1;
                if (x0 >= w - 1) (x1 = x0 = w - 1), (xs = x0);
                else x1 = x0 + 1;
                const ly = ys - y0, lx = xs - x0, hy = 1 - ly, hx = 1 - lx;
                w1 = hy * hx, w2 = hy * lx, w3 = ly * hx, w4 = ly * lx;
                v1 = x[img + y0 * w + x0], v2 = x[img + y0 * w + x1];
                v3 = x[img + y1 * w + x0], v4 = x[img + y1 * w + x1];
              }
              if (max) {
                const v = Math.max(w1 * v1, w2 * v2, w3 * v3, w4 * v4);
                if (first || v > best) best = v;
                first = false;
              } else acc += w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4;
            }
          }
          y[((r * c + ch) * ph + i) * pw + j] = max ? best : acc / count;
        }
      }
    }
  }
  return [{ dtype: "float32", shape: [nr, c, ph, pw], data: y }];
};

// *** GridSample ***

function reflect(x: number, lo: number, hi: number): number {
  const range = hi - lo;
  if (x < lo) {
    const dx = lo - x, n = Math.trunc(dx / range), r = dx - n * range;
    return n % 2 === 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const dx = x - hi, n = Math.trunc(dx / range), r = dx - n * range;
    return n % 2 === 0 ? hi - r : lo + r;
  }
  return x;
}

function cubic(t: number): number[] {
  const a = -0.75;
  const far = (d: number) => ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
  const near = (d: number) => ((a + 2) * d - (a + 3)) * d * d + 1;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** Round half to even (C's nearbyint in the default rounding mode). */
function nearbyint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const gridSample: OpImpl = (inputs, node) => {
  const xt = need(node, inputs[0], "X"), gt = need(node, inputs[1], "grid");
  const x = float32(node, xt, "X"), grid = float32(node, gt, "grid");
  if (xt.shape.length !== 4 || gt.shape.length !== 4 || gt.shape[3] !== 2) {
    throw new LowbitError(
      "UNSUPPORTED",
      "GridSample: only 2-D sampling (4-D X, [N, H, W, 2] grid)",
      {
        node: node.name,
      },
    );
  }
  // Opset 20 renamed the modes (linear, cubic) and made bilinear the default under its new name.
  const named = attrString(node, "mode", "bilinear");
  const mode = named === "linear" ? "bilinear" : named === "cubic" ? "bicubic" : named;
  const pad = attrString(node, "padding_mode", "zeros");
  const align = attrInt(node, "align_corners", 0) === 1;
  if (
    !["bilinear", "nearest", "bicubic"].includes(mode) ||
    !["zeros", "border", "reflection"].includes(pad)
  ) {
    throw new LowbitError("UNSUPPORTED", `GridSample: mode '${mode}', padding '${pad}'`, {
      node: node.name,
    });
  }
  const [n, c, h, w] = xt.shape;
  const [, ho, wo] = gt.shape;
  const xMin = align ? 0 : -0.5, xMax = align ? w - 1 : w - 0.5;
  const yMin = align ? 0 : -0.5, yMax = align ? h - 1 : h - 0.5;
  const denorm = (
    v: number,
    len: number,
  ) => (align ? ((v + 1) / 2) * (len - 1) : ((v + 1) * len - 1) / 2);
  const out = new Float32Array(n * c * ho * wo);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const img = (b * c + ch) * h * w;
      const pixel = (r: number, col: number): number => {
        if (pad === "zeros") {
          return col >= 0 && col < w && r >= 0 && r < h ? x[img + r * w + col] : 0;
        }
        if (pad === "border") {
          return x[img + Math.min(h - 1, Math.max(0, r)) * w + Math.min(w - 1, Math.max(0, col))];
        }
        const cc = Math.trunc(reflect(col, xMin, xMax)), rr = Math.trunc(reflect(r, yMin, yMax));
        return x[img + rr * w + cc];
      };
      for (let i = 0; i < ho; i++) {
        for (let j = 0; j < wo; j++) {
          const g = ((b * ho + i) * wo + j) * 2;
          // Padding applies to each tap (pixel), not to the sampling point: onnxruntime's
          // kernel; for bicubic sampling outside the image the two differ.
          let xx = denorm(grid[g], w), yy = denorm(grid[g + 1], h);
          if (mode === "nearest") (xx = nearbyint(xx)), (yy = nearbyint(yy));
          let v: number;
          if (mode === "nearest") v = pixel(Math.trunc(yy), Math.trunc(xx));
          else if (mode === "bilinear") {
            const x1 = Math.floor(xx), y1 = Math.floor(yy), x2 = x1 + 1, y2 = y1 + 1;
            const dx2 = x2 - xx, dx1 = xx - x1, dy2 = y2 - yy, dy1 = yy - y1;
            v = dy2 * (dx2 * pixel(y1, x1) + dx1 * pixel(y1, x2)) +
              dy1 * (dx2 * pixel(y2, x1) + dx1 * pixel(y2, x2));
          } else {
            const x0 = Math.floor(xx) - 1, y0 = Math.floor(yy) - 1;
            const cx = cubic(xx - x0 - 1), cy = cubic(yy - y0 - 1);
            v = 0;
            for (let p = 0; p < 4; p++) {
              let row = 0;
              for (let q = 0; q < 4; q++) row += cx[q] * pixel(y0 + p, x0 + q);
              v += cy[p] * row;
            }
          }
          out[((b * c + ch) * ho + i) * wo + j] = v;
        }
      }
    }
  }
  return [{ dtype: "float32", shape: [n, c, ho, wo], data: out }];
};

/**
 * The detection and sampling ops, by name.
 *
 * @example
 * ```ts
 * import { detectionOps } from "./detection.ts";
 * const node = { name: "n", op: "NonMaxSuppression", domain: "", inputs: [], outputs: ["s"], attrs: {} };
 * // Two overlapping boxes (IoU 0.81) and a far one; keep at most 3 with IoU <= 0.5.
 * const boxes = { dtype: "float32" as const, shape: [1, 3, 4], data: new Float32Array([
 *   0, 0, 1, 1, 0, 0.1, 1, 1.1, 0, 10, 1, 11,
 * ]) };
 * const scores = { dtype: "float32" as const, shape: [1, 1, 3], data: new Float32Array([0.9, 0.8, 0.7]) };
 * const max = { dtype: "int64" as const, shape: [1], data: new BigInt64Array([3n]) };
 * const iou = { dtype: "float32" as const, shape: [1], data: new Float32Array([0.5]) };
 * const [s] = await detectionOps.NonMaxSuppression([boxes, scores, max, iou], node, { opset: 11 });
 * if (s.data.join() !== "0,0,0,0,0,2") throw new Error();
 * ```
 */
export const detectionOps: OpTable<"NonMaxSuppression" | "RoiAlign" | "GridSample"> = {
  NonMaxSuppression: nms,
  RoiAlign: roiAlign,
  GridSample: gridSample,
};

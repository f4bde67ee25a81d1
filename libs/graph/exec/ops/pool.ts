/**
 * Pooling on float32 NCHW (and NCW) tensors: MaxPool (dilations, ceil_mode,
 * optional int64 indices), AveragePool (count_include_pad), and the global pools.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrInt, attrInts, size } from "../_tensor.ts";
import { forwardWindow, type Window2d } from "./_conv_geom.ts";
import type { OpImpl, OpTable } from "./types.ts";

function floatIn(node: Node, t: TensorData | undefined): TensorData {
  if (t === undefined || t.dtype !== "float32") {
    throw new LowbitError(
      "UNSUPPORTED",
      `${node.op}: input must be float32, got ${t?.dtype ?? "nothing"}`,
      { node: node.name },
    );
  }
  return t;
}

function kernelOf(node: Node, rank: number): [number, number] {
  const k = attrInts(node, "kernel_shape");
  if (k === undefined || k.length !== rank - 2) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: kernel_shape missing or wrong length`, {
      node: node.name,
    });
  }
  return rank === 3 ? [1, k[0]] : [k[0], k[1]];
}

/** Window geometry of a MaxPool / AveragePool (kernel_shape, ceil_mode). */
function poolWindow(node: Node, shape: readonly number[]): Window2d {
  return forwardWindow(
    node,
    shape,
    kernelOf(node, shape.length),
    attrInt(node, "ceil_mode", 0) === 1,
  );
}

function outShape(shape: readonly number[], oh: number, ow: number): number[] {
  return shape.length === 3 ? [shape[0], shape[1], ow] : [shape[0], shape[1], oh, ow];
}

const maxPool: OpImpl = (inputs, node) => {
  const t = floatIn(node, inputs[0]);
  const g = poolWindow(node, t.shape);
  const planes = t.shape[0] * t.shape[1];
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  const x = t.data as Float32Array;
  const y = new Float32Array(planes * oh * ow);
  const wantIdx = node.outputs.length > 1 && node.outputs[1] !== "";
  const idx = wantIdx ? new BigInt64Array(y.length) : undefined;
  const colMajor = attrInt(node, "storage_order", 0) === 1;
  for (let p = 0; p < planes; p++) {
    const xo = p * h * w, yo = p * oh * ow;
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let m = -Infinity, mi = -1;
        for (let ki = 0; ki < kh; ki++) {
          const iy = oy * sh + ki * dh - pt;
          if (iy < 0 || iy >= h) continue;
          for (let kj = 0; kj < kw; kj++) {
            const ix = ox * sw + kj * dw - pl;
            if (ix < 0 || ix >= w) continue;
            const v = x[xo + iy * w + ix];
            if (v > m || mi < 0) {
              m = v;
              mi = colMajor ? ix * h + iy : iy * w + ix;
            }
          }
        }
        y[yo + oy * ow + ox] = m;
        if (idx) idx[yo + oy * ow + ox] = BigInt(p * h * w + mi);
      }
    }
  }
  const shape = outShape(t.shape, oh, ow);
  const out: TensorData[] = [{ dtype: "float32", shape, data: y }];
  if (idx) out.push({ dtype: "int64", shape: [...shape], data: idx });
  return out;
};

const averagePool: OpImpl = (inputs, node) => {
  const t = floatIn(node, inputs[0]);
  const g = poolWindow(node, t.shape);
  const includePad = attrInt(node, "count_include_pad", 0) === 1;
  const planes = t.shape[0] * t.shape[1];
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow } = g;
  const x = t.data as Float32Array;
  const y = new Float32Array(planes * oh * ow);
  for (let p = 0; p < planes; p++) {
    const xo = p * h * w, yo = p * oh * ow;
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let s = 0, cnt = 0, cntPad = 0;
        for (let ki = 0; ki < kh; ki++) {
          const iy = oy * sh + ki * dh - pt;
          if (iy < -pt || iy >= h + pb) continue;
          for (let kj = 0; kj < kw; kj++) {
            const ix = ox * sw + kj * dw - pl;
            if (ix < -pl || ix >= w + pr) continue;
            cntPad++;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            s += x[xo + iy * w + ix];
            cnt++;
          }
        }
        y[yo + oy * ow + ox] = s / (includePad ? cntPad : cnt);
      }
    }
  }
  return [{ dtype: "float32", shape: outShape(t.shape, oh, ow), data: y }];
};

/**
 * Σ x[o .. o + n) in float64 with four interleaved partial sums (a fixed order: the same result
 * on every run), which keeps four additions in flight instead of one.
 */
function planeSum(x: Float32Array, o: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[o + i];
    s1 += x[o + i + 1];
    s2 += x[o + i + 2];
    s3 += x[o + i + 3];
  }
  for (; i < n; i++) s0 += x[o + i];
  return (s0 + s1) + (s2 + s3);
}

function globalPool(max: boolean): OpImpl {
  return (inputs, node) => {
    const t = floatIn(node, inputs[0]);
    const planes = t.shape[0] * t.shape[1];
    const n = size(t.shape.slice(2));
    const x = t.data as Float32Array;
    const y = new Float32Array(planes);
    for (let p = 0; p < planes; p++) {
      const o = p * n;
      if (max) {
        let m = -Infinity;
        for (let i = 0; i < n; i++) if (x[o + i] > m) m = x[o + i];
        y[p] = m;
      } else y[p] = planeSum(x, o, n) / n;
    }
    const shape = [t.shape[0], t.shape[1], ...t.shape.slice(2).map(() => 1)];
    return [{ dtype: "float32", shape, data: y }];
  };
}

/**
 * Pooling ops, by name.
 *
 * @example
 * ```ts
 * import { poolOps } from "./pool.ts";
 * const node = {
 *   name: "p", op: "MaxPool", domain: "", inputs: ["x"], outputs: ["y"],
 *   attrs: { kernel_shape: { kind: "ints" as const, value: [2, 2] } },
 * };
 * const x = { dtype: "float32" as const, shape: [1, 1, 2, 2], data: new Float32Array([1, 4, 3, 2]) };
 * const [y] = await poolOps.MaxPool([x], node, { opset: 17 });
 * if (y.data[0] !== 4) throw new Error();
 * ```
 */
export const poolOps: OpTable<"MaxPool" | "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool"> = {
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: globalPool(false),
  GlobalMaxPool: globalPool(true),
};

/**
 * Sliding-window ops over any number of spatial dimensions (3-D volumes and beyond): Conv,
 * ConvTranspose, MaxPool (any numeric dtype, with indices), AveragePool, LpPool, MaxUnpool. Conv
 * is an N-D im2col and the float GEMM; the others are direct loops in float64. They are meant
 * for what the 1-D / 2-D kernels of conv.ts and pool.ts do not cover;
 * {@link withNd} routes a node here only when its input needs it, so 2-D models keep their
 * kernels.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData, TensorStorage } from "../../ir.ts";
import { alloc, attrInt, attrInts, attrString, fusedClamp, size, toF32 } from "../_tensor.ts";
import { matmulF32Threaded } from "./_float_backend.ts";
import { applyPost, convPost } from "./_post.ts";
import type { OpImpl } from "./types.ts";

/** Resolved N-D window geometry. */
interface Geom {
  ins: number[];
  ks: number[];
  ss: number[];
  ds: number[];
  begin: number[];
  outs: number[];
}

function fail(node: Node, code: "SHAPE_MISMATCH" | "UNSUPPORTED", detail: string): LowbitError {
  return new LowbitError(code, `${node.op}: ${detail}`, { node: node.name });
}

function geometry(node: Node, ins: number[], ks: number[], ceil: boolean): Geom {
  const nd = ins.length;
  const ss = attrInts(node, "strides") ?? new Array<number>(nd).fill(1);
  const ds = attrInts(node, "dilations") ?? new Array<number>(nd).fill(1);
  const pads = attrInts(node, "pads") ?? new Array<number>(2 * nd).fill(0);
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  const begin: number[] = [], outs: number[] = [];
  for (let i = 0; i < nd; i++) {
    const ext = (ks[i] - 1) * ds[i] + 1;
    if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
      outs[i] = Math.ceil(ins[i] / ss[i]);
      const total = Math.max(0, (outs[i] - 1) * ss[i] + ext - ins[i]);
      begin[i] = autoPad === "SAME_UPPER" ? Math.floor(total / 2) : Math.ceil(total / 2);
      continue;
    }
    if (autoPad !== "NOTSET" && autoPad !== "VALID") {
      throw fail(node, "UNSUPPORTED", `auto_pad '${autoPad}'`);
    }
    const b = autoPad === "VALID" ? 0 : pads[i], e = autoPad === "VALID" ? 0 : pads[i + nd];
    begin[i] = b;
    const span = ins[i] + b + e - ext;
    outs[i] = ceil ? Math.ceil(span / ss[i]) + 1 : Math.floor(span / ss[i]) + 1;
    if (ceil && (outs[i] - 1) * ss[i] >= ins[i] + b) outs[i]--;
    if (outs[i] <= 0) throw fail(node, "SHAPE_MISMATCH", `input is smaller than the kernel`);
  }
  return { ins, ks, ss, ds, begin, outs };
}

/** Calls `f(position)` for every index tuple of `dims`, in row-major order. */
function forEachIndex(dims: number[], f: (idx: number[]) => void): void {
  const n = size(dims);
  const idx = new Array<number>(dims.length).fill(0);
  for (let p = 0; p < n; p++) {
    f(idx);
    for (let d = dims.length - 1; d >= 0; d--) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
}

/** Row-major flat offset of `idx` in `dims`, or -1 when outside. */
function flat(idx: number[], dims: number[]): number {
  let o = 0;
  for (let d = 0; d < dims.length; d++) {
    if (idx[d] < 0 || idx[d] >= dims[d]) return -1;
    o = o * dims[d] + idx[d];
  }
  return o;
}

function floatIn(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined || t.dtype !== "float32") {
    throw fail(node, "UNSUPPORTED", `${what} must be float32, got ${t?.dtype ?? "nothing"}`);
  }
  return t;
}

/**
 * For every kernel position and output position, the input element it reads (row-major offset
 * in the spatial volume), or -1 in the padding: the N-D im2col's gather table.
 */
function gatherTable(g: Geom): Int32Array {
  const kN = size(g.ks), outN = size(g.outs);
  const t = new Int32Array(kN * outN);
  const pos = new Array<number>(g.ins.length);
  let k = 0;
  forEachIndex(g.ks, (kk) => {
    let p = 0;
    forEachIndex(g.outs, (o) => {
      for (let d = 0; d < pos.length; d++) pos[d] = o[d] * g.ss[d] + kk[d] * g.ds[d] - g.begin[d];
      t[k * outN + p++] = flat(pos, g.ins);
    });
    k++;
  });
  return t;
}

const convNd: OpImpl = async (inputs, node, ctx) => {
  const xt = floatIn(node, inputs[0], "X"), wt = floatIn(node, inputs[1], "W");
  const bias = inputs[2] ? toF32(inputs[2]) : undefined;
  const group = attrInt(node, "group", 1);
  const [n, cin] = xt.shape;
  const cout = wt.shape[0];
  if (wt.shape.length !== xt.shape.length || wt.shape[1] * group !== cin || cout % group !== 0) {
    throw fail(node, "SHAPE_MISMATCH", `input [${xt.shape}] and weight [${wt.shape}] disagree`);
  }
  const g = geometry(node, xt.shape.slice(2), wt.shape.slice(2), false);
  const x = xt.data as Float32Array, w = wt.data as Float32Array;
  const cinG = cin / group, coutG = cout / group;
  const inN = size(g.ins), kN = size(g.ks), outN = size(g.outs);
  const table = gatherTable(g);
  // im2col (rows: input channel × kernel position; columns: output positions), then one GEMM
  // per image and group: W_g [coutG × cinG·kN] · col.
  const rows = cinG * kN;
  const col = new Float32Array(rows * outN);
  const y = new Float32Array(n * cout * outN);
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < group; gi++) {
      for (let ci = 0; ci < cinG; ci++) {
        const xo = (b * cin + gi * cinG + ci) * inN;
        for (let k = 0; k < kN; k++) {
          const r = (ci * kN + k) * outN, t = k * outN;
          for (let p = 0; p < outN; p++) {
            const off = table[t + p];
            col[r + p] = off < 0 ? 0 : x[xo + off];
          }
        }
      }
      const wg = w.subarray(gi * coutG * rows, (gi + 1) * coutG * rows);
      const z = await matmulF32Threaded(wg, coutG, col, 0, rows, outN, "kn", undefined, {
        reference: ctx.reference ?? false,
        constant: false,
        kernels: ctx.floatKernels,
      });
      for (let c = 0; c < coutG; c++) {
        const co = gi * coutG + c, o = (b * cout + co) * outN, bv = bias ? bias[co] : 0;
        for (let p = 0; p < outN; p++) y[o + p] = z[c * outN + p] + bv;
      }
    }
  }
  finish(node, y);
  return [{ dtype: "float32", shape: [n, cout, ...g.outs], data: y }];
};

/** The executor's fused clamp and post-ops, as the 2-D kernels apply them. */
function finish(node: Node, y: Float32Array): void {
  const c = fusedClamp(node);
  if (c) { for (let i = 0; i < y.length; i++) y[i] = Math.min(c[1], Math.max(c[0], y[i])); }
  const post = convPost(node);
  if (post) applyPost(y, post);
}

const convTransposeNd: OpImpl = (inputs, node) => {
  const xt = floatIn(node, inputs[0], "X"), wt = floatIn(node, inputs[1], "W");
  const bias = inputs[2] ? toF32(inputs[2]) : undefined;
  const group = attrInt(node, "group", 1);
  const [n, cin] = xt.shape;
  if (wt.shape[0] !== cin || wt.shape.length !== xt.shape.length || cin % group !== 0) {
    throw fail(node, "SHAPE_MISMATCH", `input [${xt.shape}] and weight [${wt.shape}] disagree`);
  }
  const ins = xt.shape.slice(2), ks = wt.shape.slice(2), nd = ins.length;
  const ss = attrInts(node, "strides") ?? new Array<number>(nd).fill(1);
  const ds = attrInts(node, "dilations") ?? new Array<number>(nd).fill(1);
  const ops = attrInts(node, "output_padding") ?? new Array<number>(nd).fill(0);
  const pads = attrInts(node, "pads") ?? new Array<number>(2 * nd).fill(0);
  const outAttr = attrInts(node, "output_shape");
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  const outs: number[] = [], begin: number[] = [];
  for (let i = 0; i < nd; i++) {
    const full = (ins[i] - 1) * ss[i] + ops[i] + (ks[i] - 1) * ds[i] + 1;
    const target = outAttr?.[outAttr.length - nd + i];
    if (target !== undefined || autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
      outs[i] = target ?? ins[i] * ss[i];
      const total = Math.max(0, full - outs[i]);
      begin[i] = autoPad === "SAME_UPPER" ? Math.floor(total / 2) : Math.ceil(total / 2);
    } else {
      begin[i] = pads[i];
      outs[i] = full - pads[i] - pads[i + nd];
    }
  }
  const coutG = wt.shape[1], cout = coutG * group, cinG = cin / group;
  const x = xt.data as Float32Array, w = wt.data as Float32Array;
  const inN = size(ins), kN = size(ks), outN = size(outs);
  const acc = new Float64Array(n * cout * outN);
  const pos = new Array<number>(nd);
  for (let b = 0; b < n; b++) {
    for (let ci = 0; ci < cin; ci++) {
      const gi = Math.floor(ci / cinG);
      let p = 0;
      forEachIndex(ins, (i) => {
        const v = x[(b * cin + ci) * inN + p++];
        let k = 0;
        forEachIndex(ks, (kk) => {
          for (let d = 0; d < nd; d++) pos[d] = i[d] * ss[d] + kk[d] * ds[d] - begin[d];
          const off = flat(pos, outs);
          if (off >= 0) {
            for (let c = 0; c < coutG; c++) {
              acc[(b * cout + gi * coutG + c) * outN + off] += v * w[(ci * coutG + c) * kN + k];
            }
          }
          k++;
        });
      });
    }
  }
  const y = new Float32Array(acc.length);
  for (let i = 0; i < y.length; i++) {
    y[i] = acc[i] + (bias ? bias[Math.floor(i / outN) % cout] : 0);
  }
  finish(node, y);
  return [{ dtype: "float32", shape: [n, cout, ...outs], data: y }];
};

type PoolKind = "max" | "avg" | "lp";

function poolNd(kind: PoolKind): OpImpl {
  return (inputs, node) => {
    const xt = inputs[0];
    if (xt === undefined || xt.dtype === "string" || xt.dtype === "bool") {
      throw fail(node, "UNSUPPORTED", `input dtype ${xt?.dtype ?? "nothing"}`);
    }
    if (kind !== "max" && xt.dtype !== "float32") {
      throw fail(node, "UNSUPPORTED", `dtype ${xt.dtype}`);
    }
    const ins = xt.shape.slice(2);
    const ks = attrInts(node, "kernel_shape");
    if (ks === undefined || ks.length !== ins.length) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `${node.op}: kernel_shape missing or wrong length`,
        {
          node: node.name,
        },
      );
    }
    const g = geometry(node, ins, ks, attrInt(node, "ceil_mode", 0) === 1);
    const includePad = attrInt(node, "count_include_pad", 0) === 1;
    const p = attrInt(node, "p", 2);
    const pads = attrInts(node, "pads") ?? new Array<number>(2 * ins.length).fill(0);
    const wantIdx = kind === "max" && node.outputs.length > 1 && node.outputs[1] !== "";
    if (wantIdx && attrInt(node, "storage_order", 0) === 1 && ins.length !== 2) {
      throw fail(node, "UNSUPPORTED", "storage_order 1 beyond 2-D");
    }
    const colMajor = wantIdx && attrInt(node, "storage_order", 0) === 1;
    const planes = xt.shape[0] * xt.shape[1];
    const inN = size(ins), outN = size(g.outs);
    const x = xt.data as unknown as (number | bigint)[];
    const y = alloc(xt.dtype, planes * outN) as unknown as (number | bigint)[];
    const idx = wantIdx ? new BigInt64Array(planes * outN) : undefined;
    const pos = new Array<number>(ins.length);
    for (let pl = 0; pl < planes; pl++) {
      let q = 0;
      forEachIndex(g.outs, (o) => {
        let best: number | bigint = 0, bestAt = -1, s = 0, cnt = 0, cntPad = 0;
        forEachIndex(g.ks, (kk) => {
          let inPad = true;
          for (let d = 0; d < pos.length; d++) {
            pos[d] = o[d] * g.ss[d] + kk[d] * g.ds[d] - g.begin[d];
            // Positions in the explicit padding count for count_include_pad (not beyond it).
            if (pos[d] < -pads[d] || pos[d] >= ins[d] + pads[d + ins.length]) inPad = false;
          }
          if (inPad) cntPad++;
          const off = flat(pos, ins);
          if (off < 0) return;
          const v = x[pl * inN + off];
          if (kind === "max") {
            if (bestAt < 0 || v > best) {
              best = v;
              bestAt = colMajor ? pos[1] * ins[0] + pos[0] : off;
            }
          } else if (kind === "avg") s += v as number;
          else s += Math.abs(v as number) ** p;
          cnt++;
        });
        if (kind === "max") {
          y[pl * outN + q] = best;
          if (idx) idx[pl * outN + q] = BigInt(pl * inN + bestAt);
        } else if (kind === "avg") y[pl * outN + q] = s / (includePad ? cntPad : cnt);
        else y[pl * outN + q] = s ** (1 / p);
        q++;
      });
    }
    const shape = [xt.shape[0], xt.shape[1], ...g.outs];
    const out: TensorData[] = [{ dtype: xt.dtype, shape, data: y as unknown as TensorStorage }];
    if (idx) out.push({ dtype: "int64", shape: [...shape], data: idx });
    return out;
  };
}

const globalLpPool: OpImpl = (inputs, node) => {
  const xt = floatIn(node, inputs[0], "X");
  const p = attrInt(node, "p", 2);
  const planes = xt.shape[0] * xt.shape[1], n = size(xt.shape.slice(2));
  const x = xt.data as Float32Array;
  const y = new Float32Array(planes);
  for (let q = 0; q < planes; q++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.abs(x[q * n + i]) ** p;
    y[q] = s ** (1 / p);
  }
  return [{
    dtype: "float32",
    shape: [...xt.shape.slice(0, 2), ...xt.shape.slice(2).map(() => 1)],
    data: y,
  }];
};

const maxUnpool: OpImpl = (inputs, node) => {
  const xt = inputs[0], it = inputs[1];
  if (xt === undefined || it === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", "MaxUnpool: X and I are required", {
      node: node.name,
    });
  }
  const ins = xt.shape.slice(2), nd = ins.length;
  const ks = attrInts(node, "kernel_shape") ?? [];
  const ss = attrInts(node, "strides") ?? new Array<number>(nd).fill(1);
  const pads = attrInts(node, "pads") ?? new Array<number>(2 * nd).fill(0);
  if (ks.length !== nd) throw fail(node, "SHAPE_MISMATCH", "kernel_shape length");
  const natural = [
    xt.shape[0],
    xt.shape[1],
    ...ins.map((d, i) => (d - 1) * ss[i] + ks[i] - pads[i] - pads[i + nd]),
  ];
  // An explicit output_shape keeps each index's coordinates in the natural shape (as ONNX's
  // test data has it): the result is the natural one padded at the end.
  const shape = inputs[2] !== undefined
    ? Array.from(inputs[2].data as BigInt64Array, (v) => Number(v))
    : natural;
  if (shape.length !== natural.length || shape.some((d, i) => d < natural[i])) {
    throw fail(node, "SHAPE_MISMATCH", `output_shape [${shape}] smaller than [${natural}]`);
  }
  const remap = (j: number): number => {
    let o = 0, rem = j;
    const st = natural.map((_, d) => size(natural.slice(d + 1)));
    for (let d = 0; d < natural.length; d++) {
      const c = Math.floor(rem / st[d]);
      rem -= c * st[d];
      o = o * shape[d] + c;
    }
    return o;
  };
  const same = shape.every((d, i) => d === natural[i]);
  const n = size(shape);
  const y = alloc(xt.dtype, n) as unknown as (number | bigint)[];
  const x = xt.data as unknown as (number | bigint)[];
  const idx = it.data as unknown as (number | bigint)[];
  if (idx.length !== x.length) throw fail(node, "SHAPE_MISMATCH", "I and X differ in size");
  for (let i = 0; i < x.length; i++) {
    const j = Number(idx[i]);
    if (!(j >= 0 && j < size(natural))) {
      throw fail(node, "SHAPE_MISMATCH", `index ${j} outside the output`);
    }
    y[same ? j : remap(j)] = x[i];
  }
  return [{ dtype: xt.dtype, shape, data: y as unknown as TensorStorage }];
};

/**
 * The N-D implementations, by op name.
 *
 * @example
 * ```ts
 * import { windowNdOps } from "./window_nd.ts";
 * const node = {
 *   name: "p", op: "MaxPool", domain: "", inputs: ["x"], outputs: ["y"],
 *   attrs: { kernel_shape: { kind: "ints" as const, value: [2, 2, 2] } },
 * };
 * const x = { dtype: "uint8" as const, shape: [1, 1, 2, 2, 2], data: new Uint8Array([1, 8, 3, 4, 5, 6, 7, 2]) };
 * const [y] = await windowNdOps.MaxPool([x], node, { opset: 12 });
 * if (y.shape.join() !== "1,1,1,1,1" || y.data[0] !== 8) throw new Error();
 * ```
 */
export const windowNdOps: Readonly<
  Record<
    "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" | "LpPool" | "MaxUnpool" | "GlobalLpPool",
    OpImpl
  >
> = {
  Conv: convNd,
  ConvTranspose: convTransposeNd,
  MaxPool: poolNd("max"),
  AveragePool: poolNd("avg"),
  LpPool: poolNd("lp"),
  MaxUnpool: maxUnpool,
  GlobalLpPool: globalLpPool,
};

/**
 * `impl2d` for float32 inputs with one or two spatial dimensions, the N-D loops of this file
 * otherwise (3-D and more, or MaxPool on integer inputs).
 *
 * @param op the op name
 * @param impl2d the 1-D / 2-D implementation
 * @returns the dispatching implementation
 *
 * @example
 * ```ts
 * import { withNd } from "./window_nd.ts";
 * const only2d = () => { throw new Error("2-D path"); };
 * const pool = withNd("MaxPool", only2d);
 * const node = {
 *   name: "p", op: "MaxPool", domain: "", inputs: ["x"], outputs: ["y"],
 *   attrs: { kernel_shape: { kind: "ints" as const, value: [1, 1, 2] } },
 * };
 * const x = { dtype: "float32" as const, shape: [1, 1, 1, 1, 2], data: new Float32Array([3, 5]) };
 * const [y] = await pool([x], node, { opset: 12 });
 * if (y.data[0] !== 5) throw new Error();
 * ```
 */
export function withNd(op: keyof typeof windowNdOps, impl2d: OpImpl): OpImpl {
  const nd = windowNdOps[op];
  return (inputs, node, ctx) => {
    const x = inputs[0];
    if (x !== undefined && (x.shape.length > 4 || x.dtype !== "float32")) {
      return nd(inputs, node, ctx);
    }
    return impl2d(inputs, node, ctx);
  };
}

/**
 * More tensor manipulation: Trilu, CumSum, Size, EyeLike, CastLike, Unique, DepthToSpace,
 * SpaceToDepth, ReverseSequence. Values move as stored, so every dtype is exact; CumSum sums
 * integers exactly (int64 as bigint) and floats in float64.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { DType, Node, TensorData, TensorStorage } from "../../ir.ts";
import { DTYPE_BY_CODE } from "../../passes/_const_eval.ts";
import {
  alloc,
  attrInt,
  attrString,
  isBig,
  normAxis,
  size,
  strides,
  toNumbers,
} from "../_tensor.ts";
import { castTo } from "./shape.ts";
import type { OpImpl, OpTable } from "./types.ts";

type Store = (number | bigint | string)[];

function need(node: Node, t: TensorData | undefined, what = "input"): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

function tensor(dtype: DType, shape: number[], data: Store): TensorData {
  return { dtype, shape, data: data as unknown as TensorStorage };
}

const trilu: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0]);
  const k = inputs[1] ? toNumbers(inputs[1])[0] : 0;
  const upper = attrInt(node, "upper", 1) === 1;
  const r = x.shape.length;
  if (r < 2) throw new LowbitError("SHAPE_MISMATCH", "Trilu: rank < 2", { node: node.name });
  const n = x.shape[r - 2], m = x.shape[r - 1];
  const src = x.data as Store;
  const out = alloc(x.dtype, src.length) as Store;
  for (let b = 0; b < size(x.shape.slice(0, -2)); b++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        const p = (b * n + i) * m + j;
        if (upper ? j - i >= k : j - i <= k) out[p] = src[p];
      }
    }
  }
  return [tensor(x.dtype, [...x.shape], out)];
};

const cumSum: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0], "x");
  const axis = normAxis(toNumbers(need(node, inputs[1], "axis"))[0], x.shape.length, node);
  const exclusive = attrInt(node, "exclusive", 0) === 1;
  const reverse = attrInt(node, "reverse", 0) === 1;
  if (x.dtype === "string" || x.dtype === "bool") {
    throw new LowbitError("UNSUPPORTED", `CumSum: dtype ${x.dtype}`, { node: node.name });
  }
  const outer = size(x.shape.slice(0, axis)), n = x.shape[axis];
  const inner = size(x.shape.slice(axis + 1));
  const src = x.data as Store;
  const out = alloc(x.dtype, src.length) as Store;
  const big = isBig(x.dtype);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let acc: number | bigint = big ? 0n : 0;
      for (let s = 0; s < n; s++) {
        const i = reverse ? n - 1 - s : s;
        const p = (o * n + i) * inner + j;
        if (exclusive) {
          out[p] = acc;
          acc = (acc as number) + (src[p] as number);
        } else {
          acc = (acc as number) + (src[p] as number);
          out[p] = acc;
        }
      }
    }
  }
  return [tensor(x.dtype, [...x.shape], out)];
};

const sizeOp: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0]);
  return [{ dtype: "int64", shape: [], data: new BigInt64Array([BigInt(size(x.shape))]) }];
};

const eyeLike: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0]);
  if (x.shape.length !== 2) {
    throw new LowbitError("SHAPE_MISMATCH", "EyeLike: input must be 2-D", { node: node.name });
  }
  const code = attrInt(node, "dtype", -1);
  const dtype = code === -1 ? x.dtype : DTYPE_BY_CODE[code];
  if (dtype === undefined || dtype === "string") {
    throw new LowbitError("UNSUPPORTED", `EyeLike: dtype code ${code}`, { node: node.name });
  }
  const k = attrInt(node, "k", 0);
  const [n, m] = x.shape;
  const out = alloc(dtype, n * m) as Store;
  const one = isBig(dtype) ? 1n : 1;
  for (let i = 0; i < n; i++) if (i + k >= 0 && i + k < m) out[i * m + i + k] = one;
  return [tensor(dtype, [n, m], out)];
};

const castLike: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0]);
  const like = need(node, inputs[1], "target_type");
  return [castTo(x, like.dtype)];
};

function compareKeys(
  a: readonly (number | bigint | string)[],
  b: readonly (number | bigint | string)[],
) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

const unique: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0], "X");
  const sorted = attrInt(node, "sorted", 1) === 1;
  const hasAxis = node.attrs.axis !== undefined;
  const shape = hasAxis ? [...x.shape] : [x.data.length];
  const axis = hasAxis ? normAxis(attrInt(node, "axis", 0), shape.length, node) : 0;
  const outer = size(shape.slice(0, axis)), n = shape[axis];
  const inner = size(shape.slice(axis + 1));
  const src = x.data as Store;
  // Item i: the slice at position i of the axis, as a list of values.
  const items: (number | bigint | string)[][] = [];
  for (let i = 0; i < n; i++) {
    const v: (number | bigint | string)[] = [];
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) v.push(src[(o * n + i) * inner + j]);
    }
    items.push(v);
  }
  const firsts: number[] = [];
  const byKey = new Map<string, number>();
  const inverseFirst: number[] = [];
  items.forEach((v, i) => {
    const key = v.map(String).join("\u0000");
    let u = byKey.get(key);
    if (u === undefined) {
      byKey.set(key, u = firsts.length);
      firsts.push(i);
    }
    inverseFirst.push(u);
  });
  const order = firsts.map((_, u) => u);
  if (sorted) order.sort((a, b) => compareKeys(items[firsts[a]], items[firsts[b]]));
  const rank = new Array<number>(order.length);
  order.forEach((u, r) => (rank[u] = r));
  const k = order.length;
  const out = alloc(x.dtype, outer * k * inner) as Store;
  order.forEach((u, r) => {
    const v = items[firsts[u]];
    let q = 0;
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) out[(o * k + r) * inner + j] = v[q++];
    }
  });
  const counts = new Array<number>(k).fill(0);
  for (const u of inverseFirst) counts[rank[u]]++;
  const yShape = [...shape];
  yShape[axis] = k;
  const i64 = (v: number[]): TensorData => ({
    dtype: "int64",
    shape: [v.length],
    data: BigInt64Array.from(v, (e) => BigInt(e)),
  });
  return [
    tensor(x.dtype, yShape, out),
    i64(order.map((u) => firsts[u])),
    i64(inverseFirst.map((u) => rank[u])),
    i64(counts),
  ];
};

/** Moves the elements of `x` by an index permutation computed per output element. */
function permute(x: TensorData, outShape: number[], from: (o: number[]) => number): TensorData {
  const os = strides(outShape);
  const n = size(outShape);
  const src = x.data as Store;
  const out = alloc(x.dtype, n) as Store;
  const idx = new Array<number>(outShape.length);
  for (let p = 0; p < n; p++) {
    let rem = p;
    for (let d = 0; d < outShape.length; d++) {
      idx[d] = Math.floor(rem / os[d]);
      rem -= idx[d] * os[d];
    }
    out[p] = src[from(idx)];
  }
  return tensor(x.dtype, outShape, out);
}

function blocks(node: Node, x: TensorData): number {
  const b = attrInt(node, "blocksize", 0);
  if (x.shape.length !== 4 || !(b > 0)) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: needs a 4-D input and blocksize > 0`, {
      node: node.name,
    });
  }
  return b;
}

const depthToSpace: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0]);
  const b = blocks(node, x);
  const [n, c, h, w] = x.shape;
  if (c % (b * b) !== 0) {
    throw new LowbitError("SHAPE_MISMATCH", "DepthToSpace: C % b² != 0", { node: node.name });
  }
  const oc = c / (b * b);
  const crd = attrString(node, "mode", "DCR") === "CRD";
  return [
    permute(x, [n, oc, h * b, w * b], ([ni, ci, y, xx]) => {
      const by = y % b, bx = xx % b;
      const ic = crd ? (ci * b + by) * b + bx : (by * b + bx) * oc + ci;
      return ((ni * c + ic) * h + Math.floor(y / b)) * w + Math.floor(xx / b);
    }),
  ];
};

const spaceToDepth: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0]);
  const b = blocks(node, x);
  const [n, c, h, w] = x.shape;
  if (h % b !== 0 || w % b !== 0) {
    throw new LowbitError("SHAPE_MISMATCH", "SpaceToDepth: H, W % b != 0", { node: node.name });
  }
  return [
    permute(x, [n, c * b * b, h / b, w / b], ([ni, oc, y, xx]) => {
      const ci = oc % c, blk = Math.floor(oc / c);
      const by = Math.floor(blk / b), bx = blk % b;
      return ((ni * c + ci) * h + y * b + by) * w + xx * b + bx;
    }),
  ];
};

const reverseSequence: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0]);
  const lens = toNumbers(need(node, inputs[1], "sequence_lens"));
  const bAxis = attrInt(node, "batch_axis", 1), tAxis = attrInt(node, "time_axis", 0);
  const xs = strides(x.shape);
  return [
    permute(x, [...x.shape], (o) => {
      const l = lens[o[bAxis]];
      let off = 0;
      for (let d = 0; d < o.length; d++) {
        const c = d === tAxis && o[d] < l ? l - 1 - o[d] : o[d];
        off += c * xs[d];
      }
      return off;
    }),
  ];
};

/**
 * The extra tensor ops, by name.
 *
 * @example
 * ```ts
 * import { tensorExtraOps } from "./tensor_extra.ts";
 * const node = { name: "t", op: "Trilu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} };
 * const x = { dtype: "int32" as const, shape: [2, 2], data: new Int32Array([1, 2, 3, 4]) };
 * const [y] = await tensorExtraOps.Trilu([x], node, { opset: 14 });
 * if (y.data.join() !== "1,2,0,4") throw new Error();
 * ```
 */
export const tensorExtraOps: OpTable<
  | "Trilu"
  | "CumSum"
  | "Size"
  | "EyeLike"
  | "CastLike"
  | "Unique"
  | "DepthToSpace"
  | "SpaceToDepth"
  | "ReverseSequence"
> = {
  Trilu: trilu,
  CumSum: cumSum,
  Size: sizeOp,
  EyeLike: eyeLike,
  CastLike: castLike,
  Unique: unique,
  DepthToSpace: depthToSpace,
  SpaceToDepth: spaceToDepth,
  ReverseSequence: reverseSequence,
};

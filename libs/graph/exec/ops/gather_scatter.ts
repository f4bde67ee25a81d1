/**
 * Index-driven ops: GatherElements, GatherND, ScatterElements (and the deprecated Scatter),
 * ScatterND (with their reductions), NonZero, Compress, OneHot. Values are copied as stored,
 * so every dtype (int64 included) is exact; indices may be int32 or int64 and negative.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData, TensorStorage } from "../../ir.ts";
import { alloc, attrInt, attrString, normAxis, size, strides, toNumbers } from "../_tensor.ts";
import type { OpImpl, OpTable } from "./types.ts";

type Store = (number | bigint | string)[];

function need(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

/** An index into a dimension of size `dim`, negative counting from the end; checked. */
function index(node: Node, i: number, dim: number): number {
  const j = i < 0 ? i + dim : i;
  if (!(j >= 0 && j < dim)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${node.op}: index ${i} is out of range for a dimension of size ${dim}`,
      { node: node.name },
    );
  }
  return j;
}

function copyData(t: TensorData): TensorStorage {
  const d = t.data;
  return Array.isArray(d) ? [...d] : (d as Float32Array).slice();
}

type Reduce = (a: number | bigint, b: number | bigint) => number | bigint;

function reduction(node: Node): Reduce | undefined {
  const r = attrString(node, "reduction", "none");
  switch (r) {
    case "none":
      return undefined;
    case "add":
      return (a, b) => (a as number) + (b as number);
    case "mul":
      return (a, b) => (a as number) * (b as number);
    case "max":
      return (a, b) => (a > b ? a : b);
    case "min":
      return (a, b) => (a < b ? a : b);
  }
  throw new LowbitError("UNSUPPORTED", `${node.op}: reduction '${r}'`, { node: node.name });
}

function store(out: Store, at: number, v: number | bigint | string, red: Reduce | undefined) {
  out[at] = red === undefined ? v : red(out[at] as number, v as number);
}

const gatherElements: OpImpl = (inputs, node) => {
  const data = need(node, inputs[0], "data");
  const it = need(node, inputs[1], "indices");
  const rank = data.shape.length;
  const axis = normAxis(attrInt(node, "axis", 0), rank, node);
  if (it.shape.length !== rank) {
    throw new LowbitError("SHAPE_MISMATCH", "GatherElements: indices rank differs from data", {
      node: node.name,
    });
  }
  const idx = toNumbers(it);
  const ds = strides(data.shape);
  const is = strides(it.shape);
  const src = data.data as Store;
  const out = alloc(data.dtype, idx.length) as Store;
  for (let p = 0; p < idx.length; p++) {
    let off = 0, rem = p;
    for (let d = 0; d < rank; d++) {
      const c = Math.floor(rem / is[d]);
      rem -= c * is[d];
      off += (d === axis ? index(node, idx[p], data.shape[axis]) : c) * ds[d];
    }
    out[p] = src[off];
  }
  return [{ dtype: data.dtype, shape: [...it.shape], data: out as unknown as TensorStorage }];
};

function scatterElements(inputs: readonly (TensorData | undefined)[], node: Node): TensorData[] {
  const data = need(node, inputs[0], "data");
  const it = need(node, inputs[1], "indices");
  const upd = need(node, inputs[2], "updates");
  const rank = data.shape.length;
  const axis = normAxis(attrInt(node, "axis", 0), rank, node);
  if (it.shape.join() !== upd.shape.join() || it.shape.length !== rank) {
    throw new LowbitError("SHAPE_MISMATCH", `${node.op}: indices and updates shapes differ`, {
      node: node.name,
    });
  }
  const red = reduction(node);
  const idx = toNumbers(it);
  const ds = strides(data.shape);
  const is = strides(it.shape);
  const out = copyData(data) as Store;
  const u = upd.data as Store;
  for (let p = 0; p < idx.length; p++) {
    let off = 0, rem = p;
    for (let d = 0; d < rank; d++) {
      const c = Math.floor(rem / is[d]);
      rem -= c * is[d];
      off += (d === axis ? index(node, idx[p], data.shape[axis]) : c) * ds[d];
    }
    store(out, off, u[p], red);
  }
  return [{ dtype: data.dtype, shape: [...data.shape], data: out as unknown as TensorStorage }];
}

/** Offsets of the slices GatherND / ScatterND address: one per index tuple. */
function ndOffsets(node: Node, data: TensorData, it: TensorData, batchDims: number): {
  offsets: number[];
  slice: number;
  tuples: number;
} {
  const q = it.shape.length;
  const k = it.shape[q - 1];
  if (q < 1 || k === undefined || k > data.shape.length - batchDims) {
    throw new LowbitError("SHAPE_MISMATCH", `${node.op}: last indices dimension too large`, {
      node: node.name,
    });
  }
  const idx = toNumbers(it);
  const ds = strides(data.shape);
  const batch = size(data.shape.slice(0, batchDims));
  const tuples = idx.length / Math.max(1, k);
  const perBatch = tuples / batch;
  const slice = size(data.shape.slice(batchDims + k));
  const batchStride = size(data.shape.slice(batchDims));
  const offsets: number[] = [];
  for (let t = 0; t < tuples; t++) {
    let off = Math.floor(t / perBatch) * batchStride;
    for (let j = 0; j < k; j++) {
      off += index(node, idx[t * k + j], data.shape[batchDims + j]) * ds[batchDims + j];
    }
    offsets.push(off);
  }
  return { offsets, slice, tuples };
}

const gatherND: OpImpl = (inputs, node) => {
  const data = need(node, inputs[0], "data");
  const it = need(node, inputs[1], "indices");
  const b = attrInt(node, "batch_dims", 0);
  const { offsets, slice } = ndOffsets(node, data, it, b);
  const k = it.shape[it.shape.length - 1];
  const shape = [...it.shape.slice(0, -1), ...data.shape.slice(b + k)];
  const src = data.data as Store;
  const out = alloc(data.dtype, offsets.length * slice) as Store;
  offsets.forEach((o, t) => {
    for (let i = 0; i < slice; i++) out[t * slice + i] = src[o + i];
  });
  return [{ dtype: data.dtype, shape, data: out as unknown as TensorStorage }];
};

const scatterND: OpImpl = (inputs, node) => {
  const data = need(node, inputs[0], "data");
  const it = need(node, inputs[1], "indices");
  const upd = need(node, inputs[2], "updates");
  const { offsets, slice } = ndOffsets(node, data, it, 0);
  if (upd.data.length !== offsets.length * slice) {
    throw new LowbitError("SHAPE_MISMATCH", "ScatterND: updates shape does not match indices", {
      node: node.name,
    });
  }
  const red = reduction(node);
  const out = copyData(data) as Store;
  const u = upd.data as Store;
  offsets.forEach((o, t) => {
    for (let i = 0; i < slice; i++) store(out, o + i, u[t * slice + i], red);
  });
  return [{ dtype: data.dtype, shape: [...data.shape], data: out as unknown as TensorStorage }];
};

const nonZero: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0], "X");
  const d = x.data as Store;
  const st = strides(x.shape);
  const hits: number[] = [];
  for (let i = 0; i < d.length; i++) if (d[i] !== 0 && d[i] !== 0n && d[i] !== "") hits.push(i);
  const rank = x.shape.length;
  const out = new BigInt64Array(rank * hits.length);
  hits.forEach((h, j) => {
    let rem = h;
    for (let a = 0; a < rank; a++) {
      const c = Math.floor(rem / st[a]);
      rem -= c * st[a];
      out[a * hits.length + j] = BigInt(c);
    }
  });
  return [{ dtype: "int64", shape: [rank, hits.length], data: out }];
};

const compress: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0], "input");
  const cond = toNumbers(need(node, inputs[1], "condition"));
  const a = node.attrs.axis;
  const flat = a === undefined;
  const shape = flat ? [x.data.length] : [...x.shape];
  const axis = flat ? 0 : normAxis(attrInt(node, "axis", 0), shape.length, node);
  const keep: number[] = [];
  for (let i = 0; i < Math.min(cond.length, shape[axis]); i++) if (cond[i]) keep.push(i);
  const outer = size(shape.slice(0, axis)), inner = size(shape.slice(axis + 1));
  const src = x.data as Store;
  const out = alloc(x.dtype, outer * keep.length * inner) as Store;
  let p = 0;
  for (let o = 0; o < outer; o++) {
    for (const k of keep) {
      const base = (o * shape[axis] + k) * inner;
      for (let i = 0; i < inner; i++) out[p++] = src[base + i];
    }
  }
  shape[axis] = keep.length;
  return [{ dtype: x.dtype, shape, data: out as unknown as TensorStorage }];
};

const oneHot: OpImpl = (inputs, node) => {
  const it = need(node, inputs[0], "indices");
  const depth = Math.trunc(toNumbers(need(node, inputs[1], "depth"))[0]);
  const vt = need(node, inputs[2], "values");
  if (vt.data.length !== 2 || !(depth > 0)) {
    throw new LowbitError("INVALID_ARGUMENT", "OneHot: values needs 2 elements, depth > 0", {
      node: node.name,
    });
  }
  const rank = it.shape.length + 1;
  const axis = normAxis(attrInt(node, "axis", -1), rank, node);
  const shape = [...it.shape.slice(0, axis), depth, ...it.shape.slice(axis)];
  const idx = toNumbers(it);
  const vals = vt.data as Store;
  const out = alloc(vt.dtype, idx.length * depth) as Store;
  const outer = size(it.shape.slice(0, axis)), inner = size(it.shape.slice(axis));
  for (let o = 0; o < outer; o++) {
    for (let d = 0; d < depth; d++) {
      for (let i = 0; i < inner; i++) {
        let k = Math.trunc(idx[o * inner + i]);
        if (k < 0) k += depth;
        out[(o * depth + d) * inner + i] = k === d ? vals[1] : vals[0];
      }
    }
  }
  return [{ dtype: vt.dtype, shape, data: out as unknown as TensorStorage }];
};

/**
 * The gather / scatter family, by name.
 *
 * @example
 * ```ts
 * import { gatherScatterOps } from "./gather_scatter.ts";
 * const node = {
 *   name: "g", op: "GatherElements", domain: "", inputs: ["d", "i"], outputs: ["y"],
 *   attrs: { axis: { kind: "int" as const, value: 1 } },
 * };
 * const d = { dtype: "float32" as const, shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) };
 * const i = { dtype: "int64" as const, shape: [2, 2], data: new BigInt64Array([0n, 0n, 1n, 0n]) };
 * const [y] = await gatherScatterOps.GatherElements([d, i], node, { opset: 17 });
 * if (y.data.join() !== "1,1,4,3") throw new Error(); // ONNX's own example
 * ```
 */
export const gatherScatterOps: OpTable<
  | "GatherElements"
  | "GatherND"
  | "ScatterElements"
  | "Scatter"
  | "ScatterND"
  | "NonZero"
  | "Compress"
  | "OneHot"
> = {
  GatherElements: gatherElements,
  GatherND: gatherND,
  ScatterElements: scatterElements,
  Scatter: scatterElements,
  ScatterND: scatterND,
  NonZero: nonZero,
  Compress: compress,
  OneHot: oneHot,
};

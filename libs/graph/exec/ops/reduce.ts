/**
 * Reductions: ReduceMean / ReduceSum / ReduceMax / ReduceMin (axes as
 * attribute or, from ReduceSum-13 and the others at opset 18, as input),
 * ArgMax, TopK.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrInt, attrInts, normAxis, size, strides, toF32, toNumbers } from "../_tensor.ts";
import type { OpImpl, OpTable } from "./types.ts";

function need(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

type Kind = "mean" | "sum" | "max" | "min";

function reduce(kind: Kind): OpImpl {
  return (inputs, node) => {
    const xt = need(node, inputs[0], "data");
    const rank = xt.shape.length;
    let axes = attrInts(node, "axes");
    if (axes === undefined && inputs[1] !== undefined) axes = toNumbers(inputs[1]);
    const keep = attrInt(node, "keepdims", 1) === 1;
    if (axes === undefined || axes.length === 0) {
      if (attrInt(node, "noop_with_empty_axes", 0) === 1) return [xt];
      axes = xt.shape.map((_, i) => i);
    }
    const red = new Set(axes.map((a) => normAxis(a, rank, node)));
    const x = toF32(xt);
    const outShapeKeep = xt.shape.map((d, i) => (red.has(i) ? 1 : d));
    const outN = size(outShapeKeep);
    const oStr = strides(outShapeKeep);
    const acc = new Float64Array(outN).fill(
      kind === "max" ? -Infinity : kind === "min" ? Infinity : 0,
    );
    // Map each input element to its output slot with counters.
    const idx = new Array<number>(rank).fill(0);
    let o = 0;
    const n = x.length;
    for (let i = 0; i < n; i++) {
      const v = x[i];
      if (kind === "max") {
        if (v > acc[o] || v !== v) acc[o] = v;
      } else if (kind === "min") {
        if (v < acc[o] || v !== v) acc[o] = v;
      } else acc[o] += v;
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        if (!red.has(d)) o += oStr[d];
        if (idx[d] < xt.shape[d]) break;
        if (!red.has(d)) o -= oStr[d] * xt.shape[d];
        idx[d] = 0;
      }
    }
    const count = n / Math.max(1, outN);
    const y = new Float32Array(outN);
    for (let i = 0; i < outN; i++) y[i] = kind === "mean" ? acc[i] / count : acc[i];
    const shape = keep ? outShapeKeep : xt.shape.filter((_, i) => !red.has(i));
    if (xt.dtype === "float32") return [{ dtype: "float32", shape, data: y }];
    if (xt.dtype === "int64") {
      return [{ dtype: "int64", shape, data: BigInt64Array.from(y, (v) => BigInt(Math.round(v))) }];
    }
    if (xt.dtype === "int32") return [{ dtype: "int32", shape, data: Int32Array.from(y) }];
    throw new LowbitError("UNSUPPORTED", `${node.op}: dtype ${xt.dtype}`, { node: node.name });
  };
}

const argMax: OpImpl = (inputs, node) => {
  const xt = need(node, inputs[0], "data");
  const axis = normAxis(attrInt(node, "axis", 0), xt.shape.length, node);
  const keep = attrInt(node, "keepdims", 1) === 1;
  const last = attrInt(node, "select_last_index", 0) === 1;
  const x = toF32(xt);
  const outer = size(xt.shape.slice(0, axis)), n = xt.shape[axis];
  const inner = size(xt.shape.slice(axis + 1));
  const y = new BigInt64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let best = -Infinity, bi = 0;
      for (let i = 0; i < n; i++) {
        const v = x[(o * n + i) * inner + j];
        if (v > best || (last && v === best) || i === 0) {
          best = v;
          bi = i;
        }
      }
      y[o * inner + j] = BigInt(bi);
    }
  }
  const shape = keep
    ? xt.shape.map((d, i) => (i === axis ? 1 : d))
    : xt.shape.filter((_, i) => i !== axis);
  return [{ dtype: "int64", shape, data: y }];
};

const topK: OpImpl = (inputs, node) => {
  const xt = need(node, inputs[0], "X");
  const kt = need(node, inputs[1], "K");
  const k = toNumbers(kt)[0];
  const axis = normAxis(attrInt(node, "axis", -1), xt.shape.length, node);
  const largest = attrInt(node, "largest", 1) === 1;
  const n = xt.shape[axis];
  if (k < 0 || k > n) {
    throw new LowbitError("INVALID_ARGUMENT", `TopK: k=${k} out of range for axis size ${n}`, {
      node: node.name,
    });
  }
  const x = toF32(xt);
  const outer = size(xt.shape.slice(0, axis)), inner = size(xt.shape.slice(axis + 1));
  const vals = new Float32Array(outer * k * inner);
  const idxs = new BigInt64Array(outer * k * inner);
  const order = new Array<number>(n);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      for (let i = 0; i < n; i++) order[i] = i;
      const at = (i: number): number => x[(o * n + i) * inner + j];
      // Stable: ties keep the lower index first.
      order.sort((p, q) => {
        const d = largest ? at(q) - at(p) : at(p) - at(q);
        return d !== 0 && d === d ? d : p - q;
      });
      for (let i = 0; i < k; i++) {
        vals[(o * k + i) * inner + j] = at(order[i]);
        idxs[(o * k + i) * inner + j] = BigInt(order[i]);
      }
    }
  }
  const shape = xt.shape.map((d, i) => (i === axis ? k : d));
  const vt: TensorData = xt.dtype === "float32"
    ? { dtype: "float32", shape, data: vals }
    : xt.dtype === "int64"
    ? { dtype: "int64", shape, data: BigInt64Array.from(vals, (v) => BigInt(v)) }
    : { dtype: "float32", shape, data: vals };
  return [vt, { dtype: "int64", shape: [...shape], data: idxs }];
};

/**
 * Reduction ops, by name.
 *
 * @example
 * ```ts
 * import { reduceOps } from "./reduce.ts";
 * const node = {
 *   name: "r", op: "ReduceSum", domain: "", inputs: ["x"], outputs: ["y"],
 *   attrs: { axes: { kind: "ints" as const, value: [1] }, keepdims: { kind: "int" as const, value: 0 } },
 * };
 * const x = { dtype: "float32" as const, shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) };
 * const [y] = await reduceOps.ReduceSum([x], node, { opset: 11 });
 * if (y.data.join() !== "3,7") throw new Error();
 * ```
 */
export const reduceOps: OpTable<
  "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ArgMax" | "TopK"
> = {
  ReduceMean: reduce("mean"),
  ReduceSum: reduce("sum"),
  ReduceMax: reduce("max"),
  ReduceMin: reduce("min"),
  ArgMax: argMax,
  TopK: topK,
};

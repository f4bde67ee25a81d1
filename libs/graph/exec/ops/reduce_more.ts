/**
 * The remaining reductions: ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceProd,
 * ReduceSumSquare (axes as attribute or input, keepdims, noop_with_empty_axes), and ArgMin.
 * Floats accumulate in float64; int32 and int64 exactly (int64 as bigint).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { alloc, attrInt, attrInts, isBig, normAxis, size, strides, toNumbers } from "../_tensor.ts";
import type { OpImpl, OpTable } from "./types.ts";

function need(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

const FLOATS = new Set(["float32", "float64"]);
const INTS = new Set(["int32", "int64", "uint8", "int8", "uint32", "uint64", "int16", "uint16"]);

interface Kind {
  /** Value folded in per element (before summing / multiplying). */
  map: (x: number) => number;
  prod?: boolean;
  /** Applied to the accumulated value. */
  finish: (acc: number) => number;
  /** Exact on integers (sums of |x|, x², products); others need float input. */
  exact: boolean;
}

const KINDS: Record<string, Kind> = {
  ReduceL1: { map: Math.abs, finish: (a) => a, exact: true },
  ReduceL2: { map: (x) => x * x, finish: Math.sqrt, exact: false },
  ReduceLogSum: { map: (x) => x, finish: Math.log, exact: false },
  ReduceLogSumExp: { map: Math.exp, finish: Math.log, exact: false },
  ReduceProd: { map: (x) => x, prod: true, finish: (a) => a, exact: true },
  ReduceSumSquare: { map: (x) => x * x, finish: (a) => a, exact: true },
};

/** Output slot of every input element, and the output shapes. */
function slots(node: Node, inputs: readonly (TensorData | undefined)[]) {
  const xt = need(node, inputs[0], "data");
  const rank = xt.shape.length;
  let axes = attrInts(node, "axes");
  if (axes === undefined && inputs[1] !== undefined) axes = toNumbers(inputs[1]);
  const keep = attrInt(node, "keepdims", 1) === 1;
  let noop = false;
  if (axes === undefined || axes.length === 0) {
    noop = attrInt(node, "noop_with_empty_axes", 0) === 1;
    axes = xt.shape.map((_, i) => i);
  }
  const red = new Set(axes.map((a) => normAxis(a, rank, node)));
  const keepShape = xt.shape.map((d, i) => (red.has(i) ? 1 : d));
  const shape = keep ? keepShape : xt.shape.filter((_, i) => !red.has(i));
  const os = strides(keepShape);
  const xs = strides(xt.shape);
  const n = size(xt.shape);
  const slot = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i, o = 0;
    for (let d = 0; d < rank; d++) {
      const c = Math.floor(rem / xs[d]);
      rem -= c * xs[d];
      if (!red.has(d)) o += c * os[d];
    }
    slot[i] = o;
  }
  return { xt, shape, outN: size(keepShape), slot, noop };
}

function reduceOp(name: keyof typeof KINDS): OpImpl {
  const k = KINDS[name];
  return (inputs, node) => {
    const { xt, shape, outN, slot, noop } = slots(node, inputs);
    if (!FLOATS.has(xt.dtype) && !(INTS.has(xt.dtype) && k.exact)) {
      throw new LowbitError("UNSUPPORTED", `${node.op}: dtype ${xt.dtype}`, { node: node.name });
    }
    if (noop) {
      // ONNX's reference applies the element map but no reduction.
      const out = alloc(xt.dtype, xt.data.length) as unknown as (number | bigint)[];
      const src = xt.data as unknown as (number | bigint)[];
      for (let i = 0; i < out.length; i++) {
        out[i] = isBig(xt.dtype)
          ? BigInt(k.finish(k.map(Number(src[i]))))
          : k.finish(k.map(src[i] as number));
      }
      return [{ dtype: xt.dtype, shape: [...xt.shape], data: out as unknown as Float32Array }];
    }
    if (isBig(xt.dtype)) {
      const acc = new Array<bigint>(outN).fill(k.prod ? 1n : 0n);
      const src = xt.data as BigInt64Array;
      for (let i = 0; i < src.length; i++) {
        const v = src[i];
        const m = name === "ReduceL1" ? (v < 0n ? -v : v) : name === "ReduceSumSquare" ? v * v : v;
        acc[slot[i]] = k.prod ? acc[slot[i]] * m : acc[slot[i]] + m;
      }
      const out = alloc(xt.dtype, outN) as BigInt64Array;
      for (let i = 0; i < outN; i++) out[i] = BigInt.asIntN(64, acc[i]);
      return [{ dtype: xt.dtype, shape, data: out }];
    }
    const src = xt.data as Float32Array;
    const acc = new Float64Array(outN).fill(k.prod ? 1 : 0);
    if (name === "ReduceLogSumExp") {
      // Shift by each slot's maximum so large inputs do not overflow exp.
      const mx = new Float64Array(outN).fill(-Infinity);
      for (let i = 0; i < src.length; i++) if (src[i] > mx[slot[i]]) mx[slot[i]] = src[i];
      for (let i = 0; i < outN; i++) if (!Number.isFinite(mx[i])) mx[i] = 0;
      for (let i = 0; i < src.length; i++) acc[slot[i]] += Math.exp(src[i] - mx[slot[i]]);
      for (let i = 0; i < outN; i++) acc[i] = Math.log(acc[i]) + mx[i];
    } else {
      for (let i = 0; i < src.length; i++) {
        const m = k.map(src[i]);
        acc[slot[i]] = k.prod ? acc[slot[i]] * m : acc[slot[i]] + m;
      }
      for (let i = 0; i < outN; i++) acc[i] = k.finish(acc[i]);
    }
    const out = alloc(xt.dtype, outN) as Float32Array;
    const int = INTS.has(xt.dtype);
    for (let i = 0; i < outN; i++) out[i] = int ? Math.trunc(acc[i]) : acc[i];
    return [{ dtype: xt.dtype, shape, data: out }];
  };
}

/** ArgMin / ArgMax comparing stored values (exact for int64), first or last index on ties. */
function argExtreme(max: boolean): OpImpl {
  return (inputs, node) => {
    const xt = need(node, inputs[0], "data");
    const axis = normAxis(attrInt(node, "axis", 0), xt.shape.length, node);
    const keep = attrInt(node, "keepdims", 1) === 1;
    const last = attrInt(node, "select_last_index", 0) === 1;
    const x = xt.data as unknown as (number | bigint)[];
    const outer = size(xt.shape.slice(0, axis)), n = xt.shape[axis];
    const inner = size(xt.shape.slice(axis + 1));
    const y = new BigInt64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        let best = x[o * n * inner + j], bi = 0;
        for (let i = 1; i < n; i++) {
          const v = x[(o * n + i) * inner + j];
          if ((max ? v > best : v < best) || (last && v === best)) {
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
}

const argMin = argExtreme(false);

type Basic = "sum" | "mean" | "max" | "min";

/** ReduceSum / Mean / Max / Min on stored values: int64 as bigint, others in float64. */
function reduceBasic(kind: Basic): OpImpl {
  return (inputs, node) => {
    const { xt, shape, outN, slot, noop } = slots(node, inputs);
    if (!FLOATS.has(xt.dtype) && !INTS.has(xt.dtype)) {
      throw new LowbitError("UNSUPPORTED", `${node.op}: dtype ${xt.dtype}`, { node: node.name });
    }
    if (noop) return [xt];
    const count = BigInt(Math.max(1, xt.data.length / Math.max(1, outN)));
    const src = xt.data as unknown as (number | bigint)[];
    const acc = new Array<number | bigint | undefined>(outN).fill(undefined);
    for (let i = 0; i < src.length; i++) {
      const a = acc[slot[i]], v = src[i];
      acc[slot[i]] = a === undefined
        ? v
        : kind === "max"
        ? (v > a || v !== v ? v : a)
        : kind === "min"
        ? (v < a || v !== v ? v : a)
        : (a as number) + (v as number);
    }
    const big = isBig(xt.dtype), int = INTS.has(xt.dtype);
    const out = alloc(xt.dtype, outN) as unknown as (number | bigint)[];
    for (let i = 0; i < outN; i++) {
      let v = acc[i] ?? (big ? 0n : kind === "max" ? -Infinity : kind === "min" ? Infinity : 0);
      if (kind === "mean") {
        v = big ? (v as bigint) / count : (v as number) / Number(count);
        if (int && !big) v = Math.trunc(v as number);
      }
      out[i] = big ? BigInt.asIntN(64, v as bigint) : v;
    }
    return [{ dtype: xt.dtype, shape, data: out as unknown as Float32Array }];
  };
}

/** TopK on stored values (int64 exact, output values keep the input's dtype). */
const topKExact: OpImpl = (inputs, node) => {
  const xt = need(node, inputs[0], "X");
  const k = toNumbers(need(node, inputs[1], "K"))[0];
  const axis = normAxis(attrInt(node, "axis", -1), xt.shape.length, node);
  const largest = attrInt(node, "largest", 1) === 1;
  const n = xt.shape[axis];
  if (!(k >= 0 && k <= n) || xt.dtype === "string") {
    throw new LowbitError("INVALID_ARGUMENT", `TopK: k=${k} for axis size ${n}, ${xt.dtype}`, {
      node: node.name,
    });
  }
  const x = xt.data as unknown as (number | bigint)[];
  const outer = size(xt.shape.slice(0, axis)), inner = size(xt.shape.slice(axis + 1));
  const vals = alloc(xt.dtype, outer * k * inner) as unknown as (number | bigint)[];
  const idxs = new BigInt64Array(outer * k * inner);
  const order = new Array<number>(n);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      for (let i = 0; i < n; i++) order[i] = i;
      const at = (i: number) => x[(o * n + i) * inner + j];
      // Ties keep the lower index first; NaN counts as the largest value.
      order.sort((p, q) => {
        const a = at(p), b = at(q);
        const gt = a > b || (a !== a && b === b), lt = a < b || (b !== b && a === a);
        return gt ? (largest ? -1 : 1) : lt ? (largest ? 1 : -1) : p - q;
      });
      for (let i = 0; i < k; i++) {
        vals[(o * k + i) * inner + j] = at(order[i]);
        idxs[(o * k + i) * inner + j] = BigInt(order[i]);
      }
    }
  }
  const shape = xt.shape.map((d, i) => (i === axis ? k : d));
  return [
    { dtype: xt.dtype, shape, data: vals as unknown as Float32Array },
    { dtype: "int64", shape: [...shape], data: idxs },
  ];
};

const BASIC: Record<string, OpImpl> = {
  ReduceSum: reduceBasic("sum"),
  ReduceMean: reduceBasic("mean"),
  ReduceMax: reduceBasic("max"),
  ReduceMin: reduceBasic("min"),
  ArgMax: argExtreme(true),
  TopK: topKExact,
};

/**
 * `float32` runs `impl` (the float32 kernels of reduce.ts); every other dtype (int64, int32,
 * uint8, float64, …) the exact loops here.
 *
 * @param op ReduceSum, ReduceMean, ReduceMax, ReduceMin, ArgMax or TopK
 * @param impl the float32 implementation
 * @returns the dispatching implementation
 *
 * @example
 * ```ts
 * import { exactBeyondF32 } from "./reduce_more.ts";
 * const sum = exactBeyondF32("ReduceSum", () => { throw new Error("float32 path"); });
 * const node = { name: "s", op: "ReduceSum", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} };
 * const big = 2n ** 60n + 1n; // not representable in float32 or float64
 * const x = { dtype: "int64" as const, shape: [2], data: new BigInt64Array([big, 1n]) };
 * const [y] = await sum([x], node, { opset: 11 });
 * if (y.data[0] !== big + 1n) throw new Error();
 * ```
 */
export function exactBeyondF32(
  op: "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ArgMax" | "TopK",
  impl: OpImpl,
): OpImpl {
  const exact = BASIC[op];
  return (inputs, node, ctx) =>
    inputs[0] !== undefined && inputs[0].dtype !== "float32"
      ? exact(inputs, node, ctx)
      : impl(inputs, node, ctx);
}

/**
 * The remaining reductions and ArgMin, by name.
 *
 * @example
 * ```ts
 * import { reduceMoreOps } from "./reduce_more.ts";
 * const node = {
 *   name: "r", op: "ReduceL2", domain: "", inputs: ["x"], outputs: ["y"],
 *   attrs: { axes: { kind: "ints" as const, value: [1] } },
 * };
 * const x = { dtype: "float32" as const, shape: [2, 2], data: new Float32Array([3, 4, 6, 8]) };
 * const [y] = await reduceMoreOps.ReduceL2([x], node, { opset: 13 });
 * if (y.shape.join() !== "2,1" || y.data.join() !== "5,10") throw new Error();
 * ```
 */
export const reduceMoreOps: OpTable<
  | "ReduceL1"
  | "ReduceL2"
  | "ReduceLogSum"
  | "ReduceLogSumExp"
  | "ReduceProd"
  | "ReduceSumSquare"
  | "ArgMin"
> = {
  ReduceL1: reduceOp("ReduceL1"),
  ReduceL2: reduceOp("ReduceL2"),
  ReduceLogSum: reduceOp("ReduceLogSum"),
  ReduceLogSumExp: reduceOp("ReduceLogSumExp"),
  ReduceProd: reduceOp("ReduceProd"),
  ReduceSumSquare: reduceOp("ReduceSumSquare"),
  ArgMin: argMin,
};

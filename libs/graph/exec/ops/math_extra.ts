/**
 * More elementwise math: inverse trigonometric and hyperbolic functions, IsInf / IsNaN,
 * BitShift, the Bitwise And / Or / Xor / Not of opset 18, Mean, the activations Selu, Celu,
 * Softsign, Shrink, ThresholdedRelu, Mish, plus Hardmax and Det. Float ops accept float32 and float64 (computed in float64, stored in the
 * input's dtype); BitShift works on unsigned integers exactly.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData, TensorStorage } from "../../ir.ts";
import { alloc, attrFloat, attrInt, attrString, normAxis, size } from "../_tensor.ts";
import { broadcastShapes, planBroadcast } from "./_broadcast.ts";
import type { OpContext, OpImpl, OpTable } from "./types.ts";

function need(node: Node, t: TensorData | undefined, what = "input"): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

function floatData(node: Node, t: TensorData): Float32Array | Float64Array {
  if (t.dtype !== "float32" && t.dtype !== "float64") {
    throw new LowbitError("UNSUPPORTED", `${node.op}: dtype ${t.dtype} (float32 / float64 only)`, {
      node: node.name,
    });
  }
  return t.data as Float32Array | Float64Array;
}

/** A float op from a scalar function of the value (and the node, for attributes). */
function floatMap(make: (node: Node) => (x: number) => number): OpImpl {
  return (inputs, node) => {
    const t = need(node, inputs[0]);
    const x = floatData(node, t);
    const f = make(node);
    const y = t.dtype === "float32" ? new Float32Array(x.length) : new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) y[i] = f(x[i]);
    return [{ dtype: t.dtype, shape: [...t.shape], data: y }];
  };
}

const fixed = (f: (x: number) => number) => floatMap(() => f);

/** Predicate ops (IsInf, IsNaN): bool output. */
function test(make: (node: Node) => (x: number) => boolean): OpImpl {
  return (inputs, node) => {
    const t = need(node, inputs[0]);
    const x = floatData(node, t);
    const f = make(node);
    const y = new Uint8Array(x.length);
    for (let i = 0; i < x.length; i++) y[i] = f(x[i]) ? 1 : 0;
    return [{ dtype: "bool", shape: [...t.shape], data: y }];
  };
}

const UNSIGNED: Record<string, number> = { uint8: 8, uint16: 16, uint32: 32 };

const bitShift: OpImpl = (inputs, node) => {
  const a = need(node, inputs[0], "X"), b = need(node, inputs[1], "Y");
  const dir = attrString(node, "direction", "");
  if (dir !== "LEFT" && dir !== "RIGHT") {
    throw new LowbitError("INVALID_ARGUMENT", `BitShift: direction '${dir}'`, { node: node.name });
  }
  if (a.dtype !== b.dtype || (UNSIGNED[a.dtype] === undefined && a.dtype !== "uint64")) {
    throw new LowbitError("UNSUPPORTED", `BitShift: dtypes ${a.dtype}, ${b.dtype}`, {
      node: node.name,
    });
  }
  const shape = broadcastShapes([a.shape, b.shape], node);
  const plan = planBroadcast([a.shape, b.shape], shape);
  const out = alloc(a.dtype, size(shape)) as unknown as (number | bigint)[];
  const ad = a.data as unknown as (number | bigint)[],
    bd = b.data as unknown as (number | bigint)[];
  const bits = UNSIGNED[a.dtype];
  let p = 0;
  for (let r = 0; r < plan.outer; r++) {
    for (let i = 0; i < plan.inner; i++) {
      const x = ad[plan.offsets[0][r] + i * plan.steps[0]];
      const s = bd[plan.offsets[1][r] + i * plan.steps[1]];
      if (bits === undefined) {
        const xb = x as bigint, sb = s as bigint;
        out[p++] = sb >= 64n ? 0n : dir === "LEFT" ? BigInt.asUintN(64, xb << sb) : xb >> sb;
      } else {
        const xn = x as number, sn = s as number;
        // Typed-array storage wraps the left shift to the dtype's width.
        out[p++] = sn >= bits ? 0 : dir === "LEFT" ? xn * 2 ** sn : Math.floor(xn / 2 ** sn);
      }
    }
  }
  return [{ dtype: a.dtype, shape, data: out as unknown as TensorStorage }];
};

const INTEGER = new Set(["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]);

/** BitwiseAnd / Or / Xor on equal integer dtypes with broadcasting (opset 18). */
function bitwise(f: (x: bigint, y: bigint) => bigint): OpImpl {
  return (inputs, node) => {
    const a = need(node, inputs[0], "A"), b = need(node, inputs[1], "B");
    if (a.dtype !== b.dtype || !INTEGER.has(a.dtype)) {
      throw new LowbitError("UNSUPPORTED", `${node.op}: dtypes ${a.dtype}, ${b.dtype}`, {
        node: node.name,
      });
    }
    const shape = broadcastShapes([a.shape, b.shape], node);
    const plan = planBroadcast([a.shape, b.shape], shape);
    const out = alloc(a.dtype, size(shape)) as unknown as (number | bigint)[];
    const ad = a.data as unknown as (number | bigint)[],
      bd = b.data as unknown as (number | bigint)[];
    const big = typeof ad[0] === "bigint" || typeof bd[0] === "bigint";
    let p = 0;
    for (let r = 0; r < plan.outer; r++) {
      for (let i = 0; i < plan.inner; i++) {
        const v = f(
          BigInt(ad[plan.offsets[0][r] + i * plan.steps[0]]),
          BigInt(bd[plan.offsets[1][r] + i * plan.steps[1]]),
        );
        // Typed-array storage wraps the result to the dtype's width.
        out[p++] = big ? v : Number(BigInt.asIntN(64, v));
      }
    }
    return [{ dtype: a.dtype, shape, data: out as unknown as TensorStorage }];
  };
}

const bitwiseNot: OpImpl = (inputs, node) => {
  const a = need(node, inputs[0], "X");
  if (!INTEGER.has(a.dtype)) {
    throw new LowbitError("UNSUPPORTED", `BitwiseNot: dtype ${a.dtype}`, { node: node.name });
  }
  const d = a.data as unknown as (number | bigint)[];
  const out = alloc(a.dtype, d.length) as unknown as (number | bigint)[];
  for (let i = 0; i < d.length; i++) {
    // ~x in two's complement; storing into the unsigned arrays wraps it (~5 → 250 in uint8).
    out[i] = typeof d[i] === "bigint" ? ~(d[i] as bigint) : ~(d[i] as number);
  }
  return [{ dtype: a.dtype, shape: [...a.shape], data: out as unknown as TensorStorage }];
};

const mean: OpImpl = (inputs, node) => {
  const ts = inputs.filter((t): t is TensorData => t !== undefined);
  if (ts.length === 0) {
    throw new LowbitError("INVALID_ARGUMENT", "Mean: no inputs", { node: node.name });
  }
  for (const t of ts) floatData(node, t);
  const shape = broadcastShapes(ts.map((t) => t.shape), node);
  const plan = planBroadcast(ts.map((t) => t.shape), shape);
  const out = ts[0].dtype === "float32"
    ? new Float32Array(size(shape))
    : new Float64Array(size(shape));
  let p = 0;
  for (let r = 0; r < plan.outer; r++) {
    for (let i = 0; i < plan.inner; i++) {
      let s = 0;
      for (let k = 0; k < ts.length; k++) {
        s += (ts[k].data as Float32Array)[plan.offsets[k][r] + i * plan.steps[k]];
      }
      out[p++] = s / ts.length;
    }
  }
  return [{ dtype: ts[0].dtype, shape, data: out }];
};

const hardmax: OpImpl = (inputs, node, ctx: OpContext) => {
  const t = need(node, inputs[0]);
  const x = floatData(node, t);
  const rank = t.shape.length;
  // Before opset 13 the input is coerced to 2-D at `axis` (default 1); from 13 it is one axis.
  const axis = normAxis(attrInt(node, "axis", ctx.opset < 13 ? 1 : -1), rank, node);
  const outer = size(t.shape.slice(0, axis));
  const n = ctx.opset < 13 ? size(t.shape.slice(axis)) : t.shape[axis];
  const inner = ctx.opset < 13 ? 1 : size(t.shape.slice(axis + 1));
  const y = t.dtype === "float32" ? new Float32Array(x.length) : new Float64Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let best = 0;
      for (let i = 1; i < n; i++) {
        if (x[(o * n + i) * inner + j] > x[(o * n + best) * inner + j]) best = i;
      }
      if (n > 0) y[(o * n + best) * inner + j] = 1;
    }
  }
  return [{ dtype: t.dtype, shape: [...t.shape], data: y }];
};

const det: OpImpl = (inputs, node) => {
  const t = need(node, inputs[0], "X");
  const x = floatData(node, t);
  const r = t.shape.length;
  const m = t.shape[r - 1];
  if (r < 2 || t.shape[r - 2] !== m) {
    throw new LowbitError("SHAPE_MISMATCH", `Det: needs [..., M, M], got [${t.shape}]`, {
      node: node.name,
    });
  }
  const batch = size(t.shape.slice(0, -2));
  const y = t.dtype === "float32" ? new Float32Array(batch) : new Float64Array(batch);
  const a = new Float64Array(m * m);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < m * m; i++) a[i] = x[b * m * m + i];
    // LU decomposition with partial pivoting.
    let d = 1;
    for (let c = 0; c < m; c++) {
      let p = c;
      for (let i = c + 1; i < m; i++) if (Math.abs(a[i * m + c]) > Math.abs(a[p * m + c])) p = i;
      if (a[p * m + c] === 0) {
        d = 0;
        break;
      }
      if (p !== c) {
        for (let k = 0; k < m; k++) {
          const tmp = a[c * m + k];
          a[c * m + k] = a[p * m + k];
          a[p * m + k] = tmp;
        }
        d = -d;
      }
      d *= a[c * m + c];
      for (let i = c + 1; i < m; i++) {
        const f = a[i * m + c] / a[c * m + c];
        for (let k = c; k < m; k++) a[i * m + k] -= f * a[c * m + k];
      }
    }
    y[b] = d;
  }
  return [{ dtype: t.dtype, shape: t.shape.slice(0, -2), data: y }];
};

/**
 * The extra math ops, by name.
 *
 * @example
 * ```ts
 * import { mathExtraOps } from "./math_extra.ts";
 * const node = { name: "s", op: "Softsign", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} };
 * const x = { dtype: "float32" as const, shape: [2], data: new Float32Array([1, -3]) };
 * const [y] = await mathExtraOps.Softsign([x], node, { opset: 17 });
 * if (y.data.join() !== "0.5,-0.75") throw new Error();
 * ```
 */
export const mathExtraOps: OpTable<
  | "Tan"
  | "Asin"
  | "Acos"
  | "Atan"
  | "Sinh"
  | "Cosh"
  | "Asinh"
  | "Acosh"
  | "Atanh"
  | "IsInf"
  | "IsNaN"
  | "BitShift"
  | "Mean"
  | "Selu"
  | "Celu"
  | "Softsign"
  | "Shrink"
  | "ThresholdedRelu"
  | "Mish"
  | "Hardmax"
  | "Det"
  | "BitwiseAnd"
  | "BitwiseOr"
  | "BitwiseXor"
  | "BitwiseNot"
> = {
  Tan: fixed(Math.tan),
  Asin: fixed(Math.asin),
  Acos: fixed(Math.acos),
  Atan: fixed(Math.atan),
  Sinh: fixed(Math.sinh),
  Cosh: fixed(Math.cosh),
  Asinh: fixed(Math.asinh),
  Acosh: fixed(Math.acosh),
  Atanh: fixed(Math.atanh),
  IsInf: test((node) => {
    const neg = attrInt(node, "detect_negative", 1) === 1;
    const pos = attrInt(node, "detect_positive", 1) === 1;
    return (x) => (pos && x === Infinity) || (neg && x === -Infinity);
  }),
  IsNaN: test(() => (x) => x !== x),
  BitShift: bitShift,
  Mean: mean,
  Selu: floatMap((node) => {
    const a = attrFloat(node, "alpha", 1.67326319217681884765625);
    const g = attrFloat(node, "gamma", 1.05070102214813232421875);
    return (x) => (x > 0 ? g * x : g * (a * Math.exp(x) - a));
  }),
  Celu: floatMap((node) => {
    const a = attrFloat(node, "alpha", 1);
    return (x) => Math.max(0, x) + Math.min(0, a * (Math.exp(x / a) - 1));
  }),
  Softsign: fixed((x) => x / (1 + Math.abs(x))),
  Shrink: floatMap((node) => {
    const l = attrFloat(node, "lambd", 0.5), b = attrFloat(node, "bias", 0);
    return (x) => (x < -l ? x + b : x > l ? x - b : 0);
  }),
  ThresholdedRelu: floatMap((node) => {
    const a = attrFloat(node, "alpha", 1);
    return (x) => (x > a ? x : 0);
  }),
  Mish: fixed((x) => x * Math.tanh(x > 20 ? x : Math.log1p(Math.exp(x)))),
  Hardmax: hardmax,
  Det: det,
  BitwiseAnd: bitwise((x, y) => x & y),
  BitwiseOr: bitwise((x, y) => x | y),
  BitwiseXor: bitwise((x, y) => x ^ y),
  BitwiseNot: bitwiseNot,
};

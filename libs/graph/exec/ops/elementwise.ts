/**
 * Elementwise operators with numpy broadcasting: arithmetic, comparison,
 * logic, `Where`, and unary math. float32 runs on specialised loops; other
 * numeric dtypes (int64 shape arithmetic, int32, bool) on a generic path.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { DType, Node, TensorData, TensorStorage } from "../../ir.ts";
import { alloc, attrInt, isBig, isNumeric, outF32, size } from "../_tensor.ts";
import { broadcastShapes, planBroadcast } from "./_broadcast.ts";
import type { OpImpl, OpTable } from "./types.ts";

// *** binary float32 loops ***

const enum B {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Min,
  Max,
  Mod,
}

function binF32(
  code: B,
  a: Float32Array,
  ao: number,
  as: number,
  b: Float32Array,
  bo: number,
  bs: number,
  o: Float32Array,
  oo: number,
  n: number,
): void {
  switch (code) {
    case B.Add:
      if (as === 1 && bs === 1) { for (let i = 0; i < n; i++) o[oo + i] = a[ao + i] + b[bo + i]; }
      else if (bs === 0) {
        const y = b[bo];
        for (let i = 0; i < n; i++) o[oo + i] = a[ao + i * as] + y;
      } else {
        const x = a[ao];
        for (let i = 0; i < n; i++) o[oo + i] = x + b[bo + i];
      }
      return;
    case B.Sub:
      if (as === 1 && bs === 1) { for (let i = 0; i < n; i++) o[oo + i] = a[ao + i] - b[bo + i]; }
      else if (bs === 0) {
        const y = b[bo];
        for (let i = 0; i < n; i++) o[oo + i] = a[ao + i * as] - y;
      } else {
        const x = a[ao];
        for (let i = 0; i < n; i++) o[oo + i] = x - b[bo + i];
      }
      return;
    case B.Mul:
      if (as === 1 && bs === 1) { for (let i = 0; i < n; i++) o[oo + i] = a[ao + i] * b[bo + i]; }
      else if (bs === 0) {
        const y = b[bo];
        for (let i = 0; i < n; i++) o[oo + i] = a[ao + i * as] * y;
      } else {
        const x = a[ao];
        for (let i = 0; i < n; i++) o[oo + i] = x * b[bo + i];
      }
      return;
    case B.Div:
      if (as === 1 && bs === 1) { for (let i = 0; i < n; i++) o[oo + i] = a[ao + i] / b[bo + i]; }
      else if (bs === 0) {
        const y = b[bo];
        for (let i = 0; i < n; i++) o[oo + i] = a[ao + i * as] / y;
      } else {
        const x = a[ao];
        for (let i = 0; i < n; i++) o[oo + i] = x / b[bo + i];
      }
      return;
    case B.Pow:
      if (bs === 0 && b[bo] === 2) {
        for (let i = 0; i < n; i++) {
          const x = a[ao + i * as];
          o[oo + i] = x * x;
        }
      } else if (bs === 0 && b[bo] === 0.5) {
        for (let i = 0; i < n; i++) o[oo + i] = Math.sqrt(a[ao + i * as]);
      } else {
        for (let i = 0; i < n; i++) o[oo + i] = Math.pow(a[ao + i * as], b[bo + i * bs]);
      }
      return;
    case B.Min:
      for (let i = 0; i < n; i++) {
        const x = a[ao + i * as], y = b[bo + i * bs];
        o[oo + i] = x !== x || y !== y ? NaN : x < y ? x : y;
      }
      return;
    case B.Max:
      for (let i = 0; i < n; i++) {
        const x = a[ao + i * as], y = b[bo + i * bs];
        o[oo + i] = x !== x || y !== y ? NaN : x > y ? x : y;
      }
      return;
    case B.Mod:
      for (let i = 0; i < n; i++) o[oo + i] = a[ao + i * as] % b[bo + i * bs];
      return;
  }
}

const NUMERIC_FNS: Record<
  "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Min" | "Max" | "Mod",
  (x: number, y: number, integer: boolean) => number
> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y, int) => (int ? Math.trunc(x / y) : x / y),
  Pow: (x, y) => Math.pow(x, y),
  Min: (x, y) => Math.min(x, y),
  Max: (x, y) => Math.max(x, y),
  Mod: (x, y, int) => {
    if (!int) return x % y;
    const r = x % y;
    return r !== 0 && (r < 0) !== (y < 0) ? r + y : r;
  },
};

const BIG_FNS: Record<keyof typeof NUMERIC_FNS, (x: bigint, y: bigint) => bigint> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y) => x / y,
  Pow: (x, y) => x ** y,
  Min: (x, y) => (x < y ? x : y),
  Max: (x, y) => (x > y ? x : y),
  Mod: (x, y) => {
    const r = x % y;
    return r !== 0n && (r < 0n) !== (y < 0n) ? r + y : r;
  },
};

function isIntegerDType(d: DType): boolean {
  return d !== "float32" && d !== "float64";
}

function requireInputs(
  node: Node,
  inputs: readonly (TensorData | undefined)[],
  n: number,
): TensorData[] {
  const out: TensorData[] = [];
  for (let i = 0; i < n; i++) {
    const t = inputs[i];
    if (t === undefined) {
      throw new LowbitError("INVALID_ARGUMENT", `${node.op}: input ${i} is missing`, {
        node: node.name,
      });
    }
    out.push(t);
  }
  return out;
}

/** Applies `f` over broadcast operands, reading/writing through plain indexing. */
function mapGeneric(
  ts: readonly TensorData[],
  shape: number[],
  outDtype: DType,
  f: (vals: (number | bigint | string)[]) => number | bigint | boolean | string,
): TensorData {
  const plan = planBroadcast(ts.map((t) => t.shape), shape);
  const out = alloc(outDtype, size(shape)) as unknown as (number | bigint | string)[];
  const big = isBig(outDtype);
  const vals = new Array<number | bigint | string>(ts.length);
  let p = 0;
  for (let r = 0; r < plan.outer; r++) {
    for (let i = 0; i < plan.inner; i++) {
      for (let k = 0; k < ts.length; k++) {
        vals[k] = (ts[k].data as unknown as (number | bigint | string)[])[
          plan.offsets[k][r] + i * plan.steps[k]
        ];
      }
      const v = f(vals);
      out[p++] = typeof v === "boolean"
        ? (v ? 1 : 0)
        : big && typeof v === "number"
        ? BigInt(v)
        : !big && typeof v === "bigint"
        ? Number(v)
        : v;
    }
  }
  return { dtype: outDtype, shape, data: out as unknown as TensorStorage };
}

function arith(name: keyof typeof NUMERIC_FNS, code: B): OpImpl {
  return (inputs, node, ctx) => {
    const [a, b] = requireInputs(node, inputs, 2);
    const shape = broadcastShapes([a.shape, b.shape], node);
    if (a.dtype === "float32" && b.dtype === "float32") {
      const plan = planBroadcast([a.shape, b.shape], shape);
      const n0 = size(shape);
      // Write into a dying operand of the output's size (its element i is read before written).
      const out = a.data.length === n0 && plan.steps[0] === 1 && ctx.reusable?.(a)
        ? a.data as Float32Array
        : b.data.length === n0 && plan.steps[1] === 1 && ctx.reusable?.(b)
        ? b.data as Float32Array
        : outF32(ctx, n0);
      const ad = a.data as Float32Array, bd = b.data as Float32Array;
      const [ao, bo] = plan.offsets;
      const [as, bs] = plan.steps;
      const n = plan.inner;
      for (let r = 0; r < plan.outer; r++) {
        binF32(code, ad, ao[r], as, bd, bo[r], bs, out, r * n, n);
      }
      return [{ dtype: "float32", shape, data: out }];
    }
    if (a.dtype !== b.dtype) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `${node.op}: operand dtypes differ (${a.dtype} and ${b.dtype})`,
        { node: node.name },
      );
    }
    if (isBig(a.dtype)) {
      const f = BIG_FNS[name];
      return [mapGeneric([a, b], shape, a.dtype, (v) => f(v[0] as bigint, v[1] as bigint))];
    }
    const f = NUMERIC_FNS[name];
    const int = isIntegerDType(a.dtype);
    return [mapGeneric([a, b], shape, a.dtype, (v) => f(v[0] as number, v[1] as number, int))];
  };
}

function compare(f: (x: number | bigint | string, y: number | bigint | string) => boolean): OpImpl {
  return (inputs, node) => {
    const [a, b] = requireInputs(node, inputs, 2);
    const shape = broadcastShapes([a.shape, b.shape], node);
    return [mapGeneric([a, b], shape, "bool", (v) => f(v[0], v[1]))];
  };
}

function logic(f: (x: boolean, y: boolean) => boolean): OpImpl {
  return (inputs, node) => {
    const [a, b] = requireInputs(node, inputs, 2);
    const shape = broadcastShapes([a.shape, b.shape], node);
    return [mapGeneric([a, b], shape, "bool", (v) => f(v[0] !== 0, v[1] !== 0))];
  };
}

// *** unary ***

/**
 * Error function: a Maclaurin series below 0.5, else Numerical Recipes' erfc
 * Chebyshev fit (|error| < 1.2e-7), below float32 resolution.
 *
 * @param x argument
 * @returns erf(x)
 *
 * @example
 * ```ts
 * import { erf } from "./elementwise.ts";
 * if (Math.abs(erf(1) - 0.8427007929) > 1e-7) throw new Error();
 * ```
 */
export function erf(x: number): number {
  const z = Math.abs(x);
  if (z < 0.5) {
    // Maclaurin series: accurate in relative terms near 0, where 1 - erfc loses digits.
    const x2 = x * x;
    return 1.1283791670955126 * x *
      (1 +
        x2 *
          (-1 / 3 +
            x2 * (1 / 10 + x2 * (-1 / 42 + x2 * (1 / 216 + x2 * (-1 / 1320 + x2 / 9360))))));
  }
  const t = 1 / (1 + 0.5 * z);
  const r = t *
    Math.exp(
      -z * z - 1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

// Round half to even is defined once, in core; re-exported for the ops that import it here.
export { roundHalfEven } from "@lowbit/core";
import { roundHalfEven } from "@lowbit/core";

/**
 * Builds a unary op from a scalar function: float32 on a plain loop, other
 * numeric dtypes via numbers when `keepIntegers`.
 *
 * @param f the scalar function
 * @param keepIntegers accept integer dtypes (result keeps the input dtype)
 * @returns the op implementation
 *
 * @example
 * ```ts
 * import { unary } from "./elementwise.ts";
 * const neg = unary((x) => -x);
 * const node = { name: "n", op: "Neg", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} };
 * const x = { dtype: "float32" as const, shape: [2], data: new Float32Array([1, -2]) };
 * const [y] = await neg([x], node, { opset: 17 });
 * if (y.data[1] !== 2) throw new Error();
 * ```
 */
export function unary(f: (x: number) => number, keepIntegers = false): OpImpl {
  return (inputs, node) => {
    const [a] = requireInputs(node, inputs, 1);
    if (a.dtype === "float32") {
      const x = a.data as Float32Array;
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = f(x[i]);
      return [{ dtype: "float32", shape: [...a.shape], data: out }];
    }
    if (!keepIntegers && a.dtype !== "float64") {
      throw new LowbitError("UNSUPPORTED", `${node.op}: dtype ${a.dtype} is not supported`, {
        node: node.name,
      });
    }
    return [mapGeneric([a], [...a.shape], a.dtype, (v) => f(Number(v[0])))];
  };
}

const where: OpImpl = (inputs, node) => {
  const [c, x, y] = requireInputs(node, inputs, 3);
  if (x.dtype !== y.dtype) {
    throw new LowbitError("INVALID_ARGUMENT", `Where: x is ${x.dtype} but y is ${y.dtype}`, {
      node: node.name,
    });
  }
  const shape = broadcastShapes([c.shape, x.shape, y.shape], node);
  return [mapGeneric([c, x, y], shape, x.dtype, (v) => (v[0] !== 0 ? v[1] : v[2]) as number)];
};

const not: OpImpl = (inputs, node) => {
  const [a] = requireInputs(node, inputs, 1);
  return [mapGeneric([a], [...a.shape], "bool", (v) => v[0] === 0)];
};

const sum: OpImpl = async (inputs, node, ctx) => {
  const ts = inputs.filter((t): t is TensorData => t !== undefined);
  if (ts.length === 0) {
    throw new LowbitError("INVALID_ARGUMENT", "Sum: no inputs", { node: node.name });
  }
  let acc = ts[0];
  for (let i = 1; i < ts.length; i++) acc = (await add([acc, ts[i]], node, ctx))[0];
  return [acc];
};

const add = arith("Add", B.Add);
const mod = arith("Mod", B.Mod);
const pow = arith("Pow", B.Pow);

/**
 * Elementwise ops, by name.
 *
 * @example
 * ```ts
 * import { elementwiseOps } from "./elementwise.ts";
 * const node = { name: "add", op: "Add", domain: "", inputs: ["a", "b"], outputs: ["c"], attrs: {} };
 * const a = { dtype: "float32" as const, shape: [2, 1], data: new Float32Array([1, 2]) };
 * const b = { dtype: "float32" as const, shape: [3], data: new Float32Array([10, 20, 30]) };
 * const [c] = await elementwiseOps.Add([a, b], node, { opset: 17 });
 * if (c.shape.join() !== "2,3" || c.data[5] !== 32) throw new Error();
 * ```
 */
export const elementwiseOps: OpTable<
  | "Add"
  | "Sub"
  | "Mul"
  | "Div"
  | "Pow"
  | "Min"
  | "Max"
  | "Mod"
  | "Equal"
  | "Greater"
  | "GreaterOrEqual"
  | "Less"
  | "LessOrEqual"
  | "And"
  | "Or"
  | "Xor"
  | "Not"
  | "Where"
  | "Sqrt"
  | "Exp"
  | "Log"
  | "Neg"
  | "Abs"
  | "Reciprocal"
  | "Floor"
  | "Ceil"
  | "Round"
  | "Sign"
  | "Sin"
  | "Cos"
  | "Erf"
  | "Sum"
> = {
  Add: add,
  Sub: arith("Sub", B.Sub),
  Mul: arith("Mul", B.Mul),
  Div: arith("Div", B.Div),
  Pow: (inputs, node, ctx) => {
    const [a, b] = requireInputs(node, inputs, 2);
    if (a.dtype === "float32" && b.dtype !== "float32") {
      const bf = new Float32Array(b.data.length);
      for (let i = 0; i < bf.length; i++) bf[i] = Number(b.data[i]);
      return pow([a, { dtype: "float32", shape: b.shape, data: bf }], node, ctx);
    }
    if (a.dtype !== b.dtype && isNumeric(a.dtype) && isNumeric(b.dtype)) {
      // Mixed types (int base, float exponent): computed in float64, stored as the base's dtype.
      const shape = broadcastShapes([a.shape, b.shape], node);
      const int = isIntegerDType(a.dtype);
      return [mapGeneric([a, b], shape, a.dtype, (v) => {
        const r = Math.pow(Number(v[0]), Number(v[1]));
        return int ? Math.trunc(r) : r;
      })];
    }
    return pow(inputs, node, ctx);
  },
  Min: nary(arith("Min", B.Min)),
  Max: nary(arith("Max", B.Max)),
  Mod: (inputs, node, ctx) => {
    const [a, b] = requireInputs(node, inputs, 2);
    if (!isNumeric(a.dtype) || !isNumeric(b.dtype)) {
      throw new LowbitError("UNSUPPORTED", `Mod: dtype ${a.dtype}`, { node: node.name });
    }
    // fmod = 1: C's fmod (the sign of the dividend), for integers too; else the sign of the divisor.
    const fmod = attrInt(node, "fmod", 0) === 1;
    const float = !isIntegerDType(a.dtype);
    if (fmod === float && a.dtype === b.dtype) return mod(inputs, node, ctx);
    if (a.dtype !== b.dtype) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `Mod: operand dtypes differ (${a.dtype} and ${b.dtype})`,
        {
          node: node.name,
        },
      );
    }
    const shape = broadcastShapes([a.shape, b.shape], node);
    return [mapGeneric([a, b], shape, a.dtype, (v) => {
      if (typeof v[0] === "bigint") return v[0] % (v[1] as bigint);
      const x = v[0] as number, y = v[1] as number;
      const r = x % y;
      return fmod || r === 0 || (r < 0) === (y < 0) ? r : r + y;
    })];
  },
  Equal: compare((x, y) => x === y),
  Greater: compare((x, y) => x > y),
  GreaterOrEqual: compare((x, y) => x >= y),
  Less: compare((x, y) => x < y),
  LessOrEqual: compare((x, y) => x <= y),
  And: logic((x, y) => x && y),
  Or: logic((x, y) => x || y),
  Xor: logic((x, y) => x !== y),
  Not: not,
  Where: where,
  Sqrt: unary(Math.sqrt),
  Exp: unary(Math.exp),
  Log: unary(Math.log),
  Neg: unary((x) => -x, true),
  Abs: unary(Math.abs, true),
  Reciprocal: unary((x) => 1 / x),
  Floor: unary(Math.floor),
  Ceil: unary(Math.ceil),
  Round: unary(roundHalfEven),
  Sign: unary(Math.sign, true),
  Sin: unary(Math.sin),
  Cos: unary(Math.cos),
  Erf: unary(erf),
  Sum: sum,
};

function nary(op: OpImpl): OpImpl {
  return async (inputs, node, ctx) => {
    const ts = inputs.filter((t): t is TensorData => t !== undefined);
    let acc = ts[0];
    for (let i = 1; i < ts.length; i++) acc = (await op([acc, ts[i]], node, ctx))[0];
    return [acc];
  };
}

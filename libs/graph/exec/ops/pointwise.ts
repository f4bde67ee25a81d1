/**
 * `PointwiseFused` (domain "lowbit"): a chain of scalar elementwise ops and
 * activations applied in one pass, block by block, each step rounding to
 * float32 exactly as the separate ops would; `MulAddFused(a, b, c)`: a · b + c
 * with numpy broadcasting in one pass (e.g. a squeeze-excitation scale and its
 * residual), rounded as Mul then Add; `ResizeAddFused(X, roi, scales, sizes, addend)`: Resize
 * then Add in one pass (a feature pyramid's upsample and lateral sum); `AddFused(a, b)`: Add of
 * two tensors then a `program` of pointwise steps (a residual sum and its ReLU), optionally then
 * QuantizeLinear to the next quantized conv's centred codes (`lowbit_qout`), in one pass; with
 * `lowbit_dq`, `a` holds centred codes, dequantized first (a residual branch's Q → DQ pair).
 * Produced by the executor's fusion.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node } from "../../ir.ts";
import type { PointwiseStep } from "../_fuse.ts";
import { outF32, size } from "../_tensor.ts";
import { addF32, quantizeF32 } from "@lowbit/kernels";
import { backendKernels } from "./_float_backend.ts";
import { broadcastShapes, planBroadcast } from "./_broadcast.ts";
import { elementwiseOps } from "./elementwise.ts";
import { resizeF32 } from "./resize.ts";
import { quantizeInto } from "./_qint.ts";
import { hardswishF32 } from "./_post.ts";
import type { OpImpl, OpTable } from "./types.ts";

const programs = new WeakMap<Node, PointwiseStep[]>();

function programOf(node: Node): PointwiseStep[] {
  let p = programs.get(node);
  if (p === undefined) {
    const a = node.attrs.program;
    if (a?.kind !== "string") {
      throw new LowbitError("INVALID_ARGUMENT", `${node.op}: no program`, { node: node.name });
    }
    p = JSON.parse(a.value) as PointwiseStep[];
    programs.set(node, p);
  }
  return p;
}

const BLOCK = 4096;

function apply(s: PointwiseStep, y: Float32Array, lo: number, hi: number): void {
  switch (s.op) {
    case "mul": {
      const c = s.c;
      for (let i = lo; i < hi; i++) y[i] *= c;
      return;
    }
    case "add": {
      const c = s.c;
      for (let i = lo; i < hi; i++) y[i] += c;
      return;
    }
    case "sub": {
      const c = s.c;
      for (let i = lo; i < hi; i++) y[i] -= c;
      return;
    }
    case "div": {
      const c = s.c;
      for (let i = lo; i < hi; i++) y[i] /= c;
      return;
    }
    case "rsub": {
      const c = s.c;
      for (let i = lo; i < hi; i++) y[i] = c - y[i];
      return;
    }
    case "rdiv": {
      const c = s.c;
      for (let i = lo; i < hi; i++) y[i] = c / y[i];
      return;
    }
    case "clip": {
      const a = s.lo, b = s.hi;
      for (let i = lo; i < hi; i++) {
        const v = y[i];
        y[i] = v < a ? a : v > b ? b : v;
      }
      return;
    }
    case "relu":
      for (let i = lo; i < hi; i++) y[i] = y[i] > 0 ? y[i] : 0;
      return;
    case "sigmoid":
      for (let i = lo; i < hi; i++) {
        y[i] = 1 / (1 + Math.exp(-y[i]));
      }
      return;
    case "hardswish":
      for (let i = lo; i < hi; i++) y[i] = hardswishF32(y[i]);
      return;
    case "tanh":
      for (let i = lo; i < hi; i++) y[i] = Math.tanh(y[i]);
      return;
    case "hardsigmoid": {
      const a = s.alpha, b = s.beta;
      for (let i = lo; i < hi; i++) y[i] = Math.max(0, Math.min(1, a * y[i] + b));
      return;
    }
    case "leakyrelu": {
      const a = s.alpha;
      for (let i = lo; i < hi; i++) if (y[i] < 0) y[i] *= a;
      return;
    }
  }
}

const pointwise: OpImpl = (inputs, node, ctx) => {
  const t = inputs[0];
  if (t === undefined || t.dtype !== "float32") {
    throw new LowbitError("UNSUPPORTED", "PointwiseFused: float32 input required", {
      node: node.name,
    });
  }
  const prog = programOf(node);
  let y = t.data as Float32Array;
  if (!ctx.reusable?.(t)) {
    y = outF32(ctx, y.length);
    y.set(t.data as Float32Array);
  }
  for (let lo = 0; lo < y.length; lo += BLOCK) {
    const hi = Math.min(y.length, lo + BLOCK);
    for (const s of prog) apply(s, y, lo, hi);
  }
  return [{ dtype: "float32", shape: [...t.shape], data: y }];
};

const f = Math.fround;

/** o[oo + i] = f(a·b) + c over one broadcast run (steps 0 or 1). */
function mulAddRun(
  a: Float32Array,
  ao: number,
  as: number,
  b: Float32Array,
  bo: number,
  bs: number,
  c: Float32Array,
  co: number,
  cs: number,
  o: Float32Array,
  oo: number,
  n: number,
): void {
  if (as === 1 && bs === 0 && cs === 1) {
    const y = b[bo];
    for (let i = 0; i < n; i++) o[oo + i] = f(a[ao + i] * y) + c[co + i];
  } else if (as === 0 && bs === 1 && cs === 1) {
    const y = a[ao];
    for (let i = 0; i < n; i++) o[oo + i] = f(y * b[bo + i]) + c[co + i];
  } else if (as === 1 && bs === 1 && cs === 1) {
    for (let i = 0; i < n; i++) o[oo + i] = f(a[ao + i] * b[bo + i]) + c[co + i];
  } else {
    for (let i = 0; i < n; i++) o[oo + i] = f(a[ao + i * as] * b[bo + i * bs]) + c[co + i * cs];
  }
}

const mulAdd: OpImpl = async (inputs, node, ctx) => {
  const [a, b, c] = inputs;
  if (a?.dtype !== "float32" || b?.dtype !== "float32" || c?.dtype !== "float32") {
    // Not float32 (or missing): the separate ops, which also report bad inputs.
    const [m] = await elementwiseOps.Mul([a, b], node, ctx);
    return elementwiseOps.Add([m, c], node, ctx);
  }
  const shape = broadcastShapes([a.shape, b.shape, c.shape], node);
  const plan = planBroadcast([a.shape, b.shape, c.shape], shape);
  const n0 = size(shape);
  // A dying operand of the output's size may take the output (element i is read first).
  const ts = [c, a, b], st = [plan.steps[2], plan.steps[0], plan.steps[1]];
  const k = ts.findIndex((t, i) => t.data.length === n0 && st[i] === 1 && ctx.reusable?.(t));
  const out = k >= 0 ? ts[k].data as Float32Array : outF32(ctx, n0);
  const [ao, bo, co] = plan.offsets, [as, bs, cs] = plan.steps, n = plan.inner;
  const ad = a.data as Float32Array, bd = b.data as Float32Array, cd = c.data as Float32Array;
  for (let r = 0; r < plan.outer; r++) {
    mulAddRun(ad, ao[r], as, bd, bo[r], bs, cd, co[r], cs, out, r * n, n);
  }
  return [{ dtype: "float32", shape, data: out }];
};

/**
 * `AddFused(a, b)`: y = steps(a + b), each step rounded to f32 as the separate ops would; with
 * `lowbit_qout` = [s, lo, hi], then the centred code clamp(round_half_even(f32(y / s)), lo, hi)
 * + 0 (NaN stays NaN) as f32, the codes a QConvFused with `lowbit_codes_in` reads, the values
 * it would quantize its input to itself (its TypeScript quantization; the kernels' quantizeF32
 * gives the same). With `lowbit_dq` = [s, nanCode], `a` holds centred codes c and its values
 * are those of QdqFused: f32(c·s), a NaN code taken as nanCode. Operands of different shapes, or
 * not float32: the separate ops.
 */
const addFused: OpImpl = async (inputs, node, ctx) => {
  let [a] = inputs;
  const b = inputs[1];
  const prog = programOf(node);
  const d = node.attrs.lowbit_dq;
  const dv = d?.kind === "floats" ? d.value : undefined;
  if (d !== undefined && (dv === undefined || dv.length !== 2 || !(dv[0] > 0))) {
    throw new LowbitError("INVALID_ARGUMENT", "AddFused: lowbit_dq must be [scale > 0, nanCode]", {
      node: node.name,
    });
  }
  const dequant = (c: Float32Array, out: Float32Array): Float32Array => {
    const [s, nan] = dv!;
    for (let i = 0; i < c.length; i++) out[i] = (c[i] === c[i] ? c[i] : nan) * s;
    return out;
  };
  const q = node.attrs.lowbit_qout;
  const qv = q?.kind === "floats" ? q.value : undefined;
  if (q !== undefined && (qv === undefined || qv.length !== 3 || !(qv[0] > 0))) {
    throw new LowbitError("INVALID_ARGUMENT", "AddFused: lowbit_qout must be [scale > 0, lo, hi]", {
      node: node.name,
    });
  }
  const fk = ctx.reference ? null : ctx.floatKernels ?? backendKernels();
  let y: Float32Array, shape: number[];
  if (
    a?.dtype === "float32" && b?.dtype === "float32" && a.shape.length === b.shape.length &&
    a.shape.every((d, i) => d === b.shape[i])
  ) {
    const ad = a.data as Float32Array, bd = b.data as Float32Array;
    // A dying operand takes the output (element i is read before it is written).
    y = ctx.reusable?.(a) ? ad : ctx.reusable?.(b) ? bd : outF32(ctx, ad.length);
    shape = [...a.shape];
    const relu = prog.length === 1 && prog[0].op === "relu";
    if ((relu || prog.length === 0) && fk !== null) {
      // One SIMD pass (the same bits: f32 sums, the Relu op's select, quantizeF32's codes).
      const quantize = qv === undefined ? undefined : { scale: qv[0], lo: qv[1], hi: qv[2] };
      const dequantize = dv === undefined ? undefined : { scale: dv[0], nanCode: dv[1] };
      addF32(ad, bd, { out: y, kernels: fk, relu, quantize, dequantize });
      return [{ dtype: "float32", shape, data: y }];
    }
    for (let lo = 0; lo < y.length; lo += BLOCK) {
      const hi = Math.min(y.length, lo + BLOCK);
      if (dv === undefined) { for (let i = lo; i < hi; i++) y[i] = ad[i] + bd[i]; }
      else {
        const [s, nan] = dv;
        for (let i = lo; i < hi; i++) {
          y[i] = Math.fround((ad[i] === ad[i] ? ad[i] : nan) * s) + bd[i];
        }
      }
      for (const s of prog) apply(s, y, lo, hi);
    }
  } else {
    // The separate ops (which also report bad operands): Add, then the steps, then the codes.
    if (dv !== undefined && a?.dtype === "float32") {
      const ad = a.data as Float32Array;
      a = { ...a, data: dequant(ad, new Float32Array(ad.length)) };
    }
    const [sum] = await elementwiseOps.Add([a, b], node, ctx);
    if (sum.dtype !== "float32") {
      throw new LowbitError("UNSUPPORTED", `AddFused: dtype ${sum.dtype} (float32 only)`, {
        node: node.name,
      });
    }
    y = sum.data as Float32Array;
    shape = sum.shape;
    for (const s of prog) apply(s, y, 0, y.length);
  }
  if (qv !== undefined) {
    // In place, on the float kernels' SIMD pass when there are kernels (the same codes).
    if (fk !== null) quantizeF32(y, qv[0], qv[1], qv[2], { out: y, kernels: fk });
    else quantizeInto(y, qv[0], 0, qv[1], qv[2], y);
  }
  return [{ dtype: "float32", shape, data: y }];
};

const resizeAdd: OpImpl = (inputs, node, ctx) => {
  const addend = inputs[4];
  const { y, added } = resizeF32(inputs.slice(0, 4), node, ctx, addend);
  if (added) return [y];
  // The addend broadcasts: a separate Add, operands in the graph's order.
  const first = node.attrs.lowbit_addend_first?.value === 1;
  return elementwiseOps.Add(first ? [addend, y] : [y, addend], node, ctx);
};

/**
 * The fused pointwise ops.
 *
 * @example
 * ```ts
 * import { pointwiseOps } from "./pointwise.ts";
 * const node = {
 *   name: "p", op: "PointwiseFused", domain: "lowbit", inputs: ["x"], outputs: ["y"],
 *   attrs: { program: { kind: "string" as const, value: '[{"op":"mul","c":2},{"op":"relu"}]' } },
 * };
 * const x = { dtype: "float32" as const, shape: [2], data: new Float32Array([-1, 3]) };
 * const [y] = await pointwiseOps.PointwiseFused([x], node, { opset: 17 });
 * if (y.data.join() !== "0,6") throw new Error();
 * ```
 */
export const pointwiseOps: OpTable<
  "PointwiseFused" | "MulAddFused" | "ResizeAddFused" | "AddFused"
> = {
  PointwiseFused: pointwise,
  MulAddFused: mulAdd,
  ResizeAddFused: resizeAdd,
  AddFused: addFused,
};

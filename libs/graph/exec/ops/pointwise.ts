/**
 * `PointwiseFused` (domain "lowbit"): a chain of scalar elementwise ops and
 * activations applied in one pass, block by block, each step rounding to
 * float32 exactly as the separate ops would. Produced by the executor's fusion.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node } from "../../ir.ts";
import type { PointwiseStep } from "../_fuse.ts";
import type { OpImpl, OpTable } from "./types.ts";

const programs = new WeakMap<Node, PointwiseStep[]>();

function programOf(node: Node): PointwiseStep[] {
  let p = programs.get(node);
  if (p === undefined) {
    const a = node.attrs.program;
    if (a?.kind !== "string") {
      throw new LowbitError("INVALID_ARGUMENT", "PointwiseFused: no program", { node: node.name });
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
      for (let i = lo; i < hi; i++) {
        const v = y[i];
        y[i] = v * Math.max(0, Math.min(1, v / 6 + 0.5));
      }
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
  const y = ctx.reusable?.(t) ? t.data as Float32Array : (t.data as Float32Array).slice();
  for (let lo = 0; lo < y.length; lo += BLOCK) {
    const hi = Math.min(y.length, lo + BLOCK);
    for (const s of prog) apply(s, y, lo, hi);
  }
  return [{ dtype: "float32", shape: [...t.shape], data: y }];
};

/**
 * The fused pointwise op.
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
export const pointwiseOps: OpTable<"PointwiseFused"> = { PointwiseFused: pointwise };

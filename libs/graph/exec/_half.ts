// float16 / bfloat16 models: ops compute in float32. An op whose floating inputs include
// float16 / bfloat16 ones gets those widened to float32 (exact; constants once, cached), and
// its float32 outputs are rounded back to the first such input's dtype (nearest even), as
// onnxruntime does when it runs fp16 nodes on float kernels. Ops that read or set dtypes
// themselves run unwrapped.

import type { DType, TensorData } from "../ir.ts";
import { fromFloat32, toFloat32 } from "../tensor_data.ts";
import type { OpContext, OpImpl } from "./ops/types.ts";

/** Ops that handle float16 / bfloat16 themselves (dtype-setting, shape-only, control flow). */
const NATIVE: ReadonlySet<string> = new Set([
  "Cast",
  "CastLike",
  "Shape",
  "Size",
  "Constant",
  "ConstantOfShape",
  "Identity",
  "If",
  "Loop",
  "Scan",
]);

/** float32 copies of constant float16 / bfloat16 storage, and the set of those copies. */
const widened = new WeakMap<object, Float32Array>();
const wideConstants = new WeakSet<object>();

function isHalf(d: DType): boolean {
  return d === "float16" || d === "bfloat16";
}

/** `impl`, widened for float16 / bfloat16 inputs when the op does not handle them itself. */
export function halfAsFloat(op: string, impl: OpImpl): OpImpl {
  if (NATIVE.has(op)) return impl;
  return (inputs, node, ctx) => {
    let half: DType | undefined;
    for (const t of inputs) {
      if (t !== undefined && isHalf(t.dtype)) {
        half = t.dtype;
        break;
      }
    }
    if (half === undefined) return impl(inputs, node, ctx);
    let constants = false;
    const wide = inputs.map((t): TensorData | undefined => {
      if (t === undefined || !isHalf(t.dtype)) return t;
      if (!ctx.isConstant?.(t)) return { dtype: "float32", shape: t.shape, data: toFloat32(t) };
      // Constants (weights) are widened once; kernels may then cache their packed form.
      constants = true;
      let data = widened.get(t.data);
      if (data === undefined) {
        data = toFloat32(t);
        widened.set(t.data, data);
        wideConstants.add(data);
      }
      return { dtype: "float32", shape: t.shape, data };
    });
    const c: OpContext = constants
      ? { ...ctx, isConstant: (t) => wideConstants.has(t.data) || (ctx.isConstant?.(t) ?? false) }
      : ctx;
    const r = impl(wide, node, c);
    return r instanceof Promise ? r.then((o) => narrow(o, half)) : narrow(r, half);
  };
}

function narrow(outs: TensorData[], dtype: DType): TensorData[] {
  return outs.map((t) =>
    t !== undefined && t.dtype === "float32"
      ? fromFloat32(t.data as Float32Array, t.shape, dtype)
      : t
  );
}

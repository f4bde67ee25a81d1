// float16 / bfloat16 models: ops compute in float32. An op whose floating inputs include
// float16 / bfloat16 ones gets those widened to float32 (exact), and its float32 outputs are
// rounded back to the first such input's dtype (nearest even), as onnxruntime's fp16 kernels
// store their results. Ops that read or set dtypes themselves run unwrapped.

import type { DType, TensorData } from "../ir.ts";
import { fromFloat32, toFloat32 } from "../tensor_data.ts";
import type { OpImpl } from "./ops/types.ts";

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
    const wide = inputs.map((t) =>
      t !== undefined && isHalf(t.dtype)
        ? { dtype: "float32" as const, shape: t.shape, data: toFloat32(t) }
        : t
    );
    const r = impl(wide, node, ctx);
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

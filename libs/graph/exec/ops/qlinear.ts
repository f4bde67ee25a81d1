/**
 * `QuantizeLinear` / `DequantizeLinear` as ONNX defines them: per-tensor,
 * per-axis and (opset 21) blocked scales; int8 / uint8 / int16 / uint16 /
 * int4 / uint4 / int32 (dequantize only) and float8 e4m3fn / e5m2 codes.
 * Rounding is half to even after a float32 division, as onnxruntime does.
 *
 * @module
 */

import { getFormat, LowbitError } from "@lowbit/core";
import type { DType, Node, TensorData } from "../../ir.ts";
import { alloc, attrInt, normAxis, outF32, size, toF32 } from "../_tensor.ts";
import { roundHalfEven } from "./elementwise.ts";
import type { OpImpl, OpTable } from "./types.ts";

/** Integer code ranges. */
export const INT_RANGES: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int4: [-8, 7],
  uint4: [0, 15],
  int32: [-2147483648, 2147483647],
};

const ONNX_OUT: Record<number, DType> = {
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  17: "float8e4m3fn",
  19: "float8e5m2",
  21: "uint4",
  22: "int4",
};

// The fp8 codecs are core's (defined once): nearest, ties to even; their largest finite values.
const FP8 = {
  float8e4m3fn: { format: getFormat("fp8_e4m3fn"), max: 448, overflow: () => 0x7f },
  float8e5m2: {
    format: getFormat("fp8_e5m2"),
    max: 57344,
    overflow: (sign: number) => sign | 0x7c,
  },
} as const;
const one = new Float32Array(1);

/**
 * Encodes a value to an fp8 code, round to nearest even; `saturate` clamps
 * out-of-range values (and infinities) to the largest finite value.
 *
 * @param x value
 * @param format "float8e4m3fn" or "float8e5m2"
 * @param saturate clamp instead of producing NaN / infinity
 * @returns the code
 *
 * @example
 * ```ts
 * import { encodeFp8 } from "./qlinear.ts";
 * if (encodeFp8(448, "float8e4m3fn", true) !== 0x7e) throw new Error();
 * if (encodeFp8(1e6, "float8e4m3fn", true) !== 0x7e) throw new Error();
 * ```
 */
export function encodeFp8(
  x: number,
  format: "float8e4m3fn" | "float8e5m2",
  saturate: boolean,
): number {
  const f = FP8[format];
  if (x !== x) return format === "float8e4m3fn" ? 0x7f : 0x7e;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  one[0] = x;
  const code = f.format.encode(one)[0];
  if (Math.abs(x) > f.max) {
    // Beyond the largest finite value: clamp (saturate) or NaN / infinity, as ONNX defines.
    if (!saturate) return f.overflow(sign);
    return sign | (format === "float8e4m3fn" ? 0x7e : 0x7b);
  }
  return code;
}

/** Per-element scale/zero-point index mapping for per-tensor / per-axis / blocked params. */
function paramIndex(
  x: TensorData,
  scale: TensorData,
  node: Node,
): (i: number) => number {
  const n = scale.data.length;
  if (n === 1) return () => 0;
  const rank = x.shape.length;
  const axis = normAxis(attrInt(node, "axis", 1), rank, node);
  const inner = size(x.shape.slice(axis + 1));
  const d = x.shape[axis];
  if (scale.shape.length <= 1) {
    if (n !== d) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `${node.op}: ${n} scales for axis ${axis} of size ${d}`,
        { node: node.name },
      );
    }
    return (i) => Math.floor(i / inner) % d;
  }
  // Blocked (opset 21): scale has x's rank, axis dim = ceil(d / block).
  const block = attrInt(node, "block_size", 0);
  if (block <= 0 || scale.shape.length !== rank) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${node.op}: scale shape [${scale.shape}] for [${x.shape}]`,
      {
        node: node.name,
      },
    );
  }
  const nb = scale.shape[axis];
  return (i) => {
    const outer = Math.floor(i / (inner * d));
    const a = Math.floor(i / inner) % d;
    return (outer * nb + Math.floor(a / block)) * inner + (i % inner);
  };
}

const quantize: OpImpl = (inputs, node) => {
  const xt = inputs[0], st = inputs[1];
  if (xt === undefined || st === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", "QuantizeLinear: x and y_scale are required", {
      node: node.name,
    });
  }
  const zt = inputs[2];
  const outDtype: DType = zt?.dtype ?? ONNX_OUT[attrInt(node, "output_dtype", 2)] ?? "uint8";
  const x = toF32(xt), s = toF32(st);
  const z = zt ? toF32(zt) : undefined;
  const pi = paramIndex(xt, st, node);
  const out = alloc(outDtype, x.length);
  const n = x.length;
  if (outDtype === "float8e4m3fn" || outDtype === "float8e5m2") {
    const sat = attrInt(node, "saturate", 1) === 1;
    const o = out as Uint8Array;
    for (let i = 0; i < n; i++) {
      const k = pi(i);
      o[i] = encodeFp8(Math.fround(x[i] / s[k]), outDtype, sat);
    }
    return [{ dtype: outDtype, shape: [...xt.shape], data: o }];
  }
  const range = INT_RANGES[outDtype];
  if (range === undefined) {
    throw new LowbitError("UNSUPPORTED", `QuantizeLinear: output dtype ${outDtype}`, {
      node: node.name,
    });
  }
  const [lo, hi] = range;
  const o = out as Int32Array;
  if (st.data.length === 1) {
    // Per tensor: clamp first (lo − z, hi − z are integers, so the code is the same), then
    // round half to even by adding and subtracting 1.5·2⁵²; NaN still stores as 0.
    const sv = s[0], zv = z ? z[0] : 0, a = lo - zv, b = hi - zv, rne = 6755399441055744;
    for (let i = 0; i < n; i++) {
      let v = Math.fround(x[i] / sv);
      v = v < a ? a : v > b ? b : v;
      o[i] = v + rne - rne + zv;
    }
    return [{ dtype: outDtype, shape: [...xt.shape], data: out }];
  }
  for (let i = 0; i < n; i++) {
    const k = pi(i);
    const q = roundHalfEven(Math.fround(x[i] / s[k])) + (z ? z[k] : 0);
    o[i] = q < lo ? lo : q > hi ? hi : q;
  }
  return [{ dtype: outDtype, shape: [...xt.shape], data: out }];
};

const dequantize: OpImpl = (inputs, node, ctx) => {
  const xt = inputs[0], st = inputs[1];
  if (xt === undefined || st === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", "DequantizeLinear: x and x_scale are required", {
      node: node.name,
    });
  }
  if (
    st.data.length === 1 && (xt.dtype === "int8" || xt.dtype === "uint8") &&
    (inputs[2] === undefined || inputs[2].data.length === 1)
  ) {
    // Per-tensor 8-bit codes (a quantized model's activations): read the codes where they are,
    // into recycled storage. (q − z)·s is exact in a double (9-bit × 24-bit), so the one
    // rounding on the store gives the same bits as the generic loop below.
    const q = xt.data as Int8Array | Uint8Array;
    const sv = toF32(st)[0], zv = inputs[2] ? toF32(inputs[2])[0] : 0;
    const y = outF32(ctx, q.length);
    for (let i = 0; i < q.length; i++) y[i] = (q[i] - zv) * sv;
    return [{ dtype: "float32", shape: [...xt.shape], data: y }];
  }
  const x = toF32(xt), s = toF32(st);
  const z = inputs[2] ? toF32(inputs[2]) : undefined;
  const pi = paramIndex(xt, st, node);
  // Codes that are not float32 (int4 / int16 / int32 / float8 …) were decoded into a fresh array
  // above: the result goes there (each element read before it is written), so folding a weight
  // DequantizeLinear makes one float32 copy of it, not two (PP-OCRv4 det fp8: 4.7 MB).
  const y = x !== xt.data ? x : new Float32Array(x.length);
  if (st.data.length === 1) {
    const sv = s[0], zv = z ? z[0] : 0;
    for (let i = 0; i < x.length; i++) y[i] = (x[i] - zv) * sv;
  } else {
    for (let i = 0; i < x.length; i++) {
      const k = pi(i);
      y[i] = (x[i] - (z ? z[k] : 0)) * s[k];
    }
  }
  return [{ dtype: "float32", shape: [...xt.shape], data: y }];
};

/**
 * Quantize / dequantize ops, by name.
 *
 * @example
 * ```ts
 * import { qlinearOps } from "./qlinear.ts";
 * const node = { name: "q", op: "QuantizeLinear", domain: "", inputs: ["x", "s", "z"], outputs: ["y"], attrs: {} };
 * const x = { dtype: "float32" as const, shape: [3], data: new Float32Array([0.25, 0.75, 100]) };
 * const s = { dtype: "float32" as const, shape: [], data: new Float32Array([0.5]) };
 * const z = { dtype: "int8" as const, shape: [], data: new Int8Array([0]) };
 * const [y] = await qlinearOps.QuantizeLinear([x, s, z], node, { opset: 13 });
 * if (y.data.join() !== "0,2,127") throw new Error(String(y.data));
 * ```
 */
export const qlinearOps: OpTable<"QuantizeLinear" | "DequantizeLinear"> = {
  QuantizeLinear: quantize,
  DequantizeLinear: dequantize,
};

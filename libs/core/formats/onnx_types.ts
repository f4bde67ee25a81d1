/**
 * How each number format maps to ONNX: the tensor element type its codes are stored as in QDQ
 * ONNX, and the opset that first allows it in QuantizeLinear / DequantizeLinear. Formats not
 * listed have no ONNX form (they are written to lowbit files).
 *
 * @module
 */

/** ONNX storage of a format's codes. */
export interface OnnxQuantType {
  /** ONNX element type name, as lowbit's graph IR spells it. */
  readonly dtype:
    | "int8"
    | "uint8"
    | "int16"
    | "uint16"
    | "int4"
    | "uint4"
    | "float8e4m3fn"
    | "float8e5m2";
  /** Smallest default-domain opset whose QuantizeLinear / DequantizeLinear take it. */
  readonly opset: number;
}

const TYPES: Readonly<Record<string, OnnxQuantType>> = {
  int8: { dtype: "int8", opset: 13 },
  uint8: { dtype: "uint8", opset: 13 },
  int16: { dtype: "int16", opset: 21 },
  uint16: { dtype: "uint16", opset: 21 },
  int4: { dtype: "int4", opset: 21 },
  uint4: { dtype: "uint4", opset: 21 },
  fp8_e4m3fn: { dtype: "float8e4m3fn", opset: 19 },
  fp8_e5m2: { dtype: "float8e5m2", opset: 19 },
};

/**
 * The ONNX storage type of a format, or undefined when QDQ ONNX cannot hold it.
 *
 * @param format format name
 * @returns its ONNX element type and minimum opset
 *
 * @example
 * ```ts
 * import { onnxQuantType } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.deepEqual(onnxQuantType("int4"), { dtype: "int4", opset: 21 });
 * assert.equal(onnxQuantType("mxfp4"), undefined);
 * ```
 */
export function onnxQuantType(format: string): OnnxQuantType | undefined {
  return Object.hasOwn(TYPES, format) ? TYPES[format] : undefined;
}

/**
 * Runs lowbit files: turns a {@link LowbitFile} (model without its quantized
 * weights + the quantized tensors) into a model the executor runs.
 *
 * - int8 / uint8 / int4 / uint4 tensors with per-tensor or per-channel scales
 *   become integer-code initializers followed by a DequantizeLinear, so that
 *   `createExecutor(model, { quantized: "integer" })` runs their MatMul / Gemm /
 *   Conv on integer arithmetic wherever the activation is quantized too
 *   (weight-only layers dequantize once per run and run in float);
 * - fp8_e4m3fn / fp8_e5m2 tensors likewise become float8 codes + DequantizeLinear,
 *   which `quantized: "integer"` runs on the float kernels' minifloat GEMM (MatMul / Gemm);
 * - every other format (other integer widths, fp6 / fp4, per-group scales)
 *   is dequantized once, at load, to a float32 initializer (`dequantizeAffine`),
 *   and runs on the float kernels;
 * - block formats (MX, NVFP4) are decoded with their per-block scale codes
 *   (extra array `block_scales`, optional `tensor_scale`).
 *
 * @module
 */

import { dequantizeAffine, getFormat, isBlockFormat, LowbitError } from "@lowbit/core";
import type { LowbitFile } from "../export/lowbit_file.ts";
import type { DType, Model, Node, TensorData } from "../ir.ts";

const FP8: Record<string, DType> = { fp8_e4m3fn: "float8e4m3fn", fp8_e5m2: "float8e5m2" };

const ONNX_INT: Record<string, DType> = {
  int8: "int8",
  uint8: "uint8",
  int4: "int4",
  uint4: "uint4",
};

/**
 * The runnable model of a lowbit file.
 *
 * @param file a decoded lowbit file (`readLowbitFile` / `decodeLowbitFile`)
 * @returns a model whose quantized weights are DequantizeLinear nodes or float initializers
 *
 * @example
 * ```ts
 * import { lowbitModel } from "./lowbit_model.ts";
 * const file = {
 *   plan: {},
 *   model: {
 *     irVersion: 9, opsets: [{ domain: "", version: 17 }], producerName: "", producerVersion: "",
 *     metadata: {},
 *     graph: {
 *       name: "g", valueInfo: new Map(), initializers: new Map(),
 *       inputs: [{ name: "x", dtype: "float32" as const, shape: [1, 2] }],
 *       outputs: [{ name: "y", dtype: "float32" as const }],
 *       nodes: [{ name: "mm", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }],
 *     },
 *   },
 *   tensors: new Map([["w", {
 *     format: "int8", bits: 8, shape: [2, 1], granularity: { kind: "tensor" as const },
 *     mode: "symmetric" as const, codes: new Uint8Array([2, 254]), scale: new Float32Array([0.5]),
 *     zeroPoint: new Int32Array(1),
 *   }]]),
 * };
 * const m = lowbitModel(file);
 * if (m.graph.nodes[0].op !== "DequantizeLinear") throw new Error();
 * ```
 */
export function lowbitModel(file: LowbitFile): Model {
  const g = file.model.graph;
  const inits = new Map(g.initializers);
  const front: Node[] = [];
  for (const [name, t] of file.tensors) {
    const subject = { tensor: name };
    const fmt = getFormat(t.format);
    const gran = t.granularity;
    const dtype = ONNX_INT[t.format];
    if (dtype !== undefined && gran.kind !== "group") {
      const values = fmt.decode(t.codes);
      const data = dtype === "int8" || dtype === "int4"
        ? Int8Array.from(values)
        : Uint8Array.from(values);
      const zpT: TensorData = dtype === "int8" || dtype === "int4"
        ? { dtype, shape: [t.zeroPoint.length], data: Int8Array.from(t.zeroPoint) }
        : { dtype, shape: [t.zeroPoint.length], data: Uint8Array.from(t.zeroPoint) };
      const perTensor = gran.kind === "tensor";
      if (perTensor) zpT.shape = [];
      inits.set(`${name}.lowbit_codes`, { dtype, shape: [...t.shape], data });
      inits.set(`${name}.lowbit_scale`, {
        dtype: "float32",
        shape: perTensor ? [] : [t.scale.length],
        data: t.scale,
      });
      inits.set(`${name}.lowbit_zero_point`, zpT);
      front.push({
        name: `${name}.lowbit_dequantize`,
        op: "DequantizeLinear",
        domain: "",
        inputs: [`${name}.lowbit_codes`, `${name}.lowbit_scale`, `${name}.lowbit_zero_point`],
        outputs: [name],
        attrs: gran.kind === "channel" ? { axis: { kind: "int", value: gran.axis } } : {},
      });
      continue;
    }
    const fp8 = FP8[t.format];
    if (fp8 !== undefined && gran.kind !== "group" && t.codes instanceof Uint8Array) {
      // Codes are the IEEE-style bit patterns ONNX uses: DQ(float8) → minifloat GEMM.
      const perTensor = gran.kind === "tensor";
      inits.set(`${name}.lowbit_codes`, { dtype: fp8, shape: [...t.shape], data: t.codes });
      inits.set(`${name}.lowbit_scale`, {
        dtype: "float32",
        shape: perTensor ? [] : [t.scale.length],
        data: t.scale,
      });
      front.push({
        name: `${name}.lowbit_dequantize`,
        op: "DequantizeLinear",
        domain: "",
        inputs: [`${name}.lowbit_codes`, `${name}.lowbit_scale`],
        outputs: [name],
        attrs: gran.kind === "channel" ? { axis: { kind: "int", value: gran.axis } } : {},
      });
      continue;
    }
    let values: Float32Array;
    if (isBlockFormat(fmt)) {
      const bs = t.extra?.block_scales;
      if (bs === undefined) {
        throw new LowbitError(
          "INVALID_TENSOR",
          `block format '${t.format}' without block_scales`,
          subject,
        );
      }
      const ts = t.extra?.tensor_scale;
      const decoded = fmt.decodeBlocks({
        codes: t.codes,
        scales: bs.data as Uint8Array,
        tensorScale: ts ? Number(ts.data[0]) : 1,
      });
      values = new Float32Array(decoded.length);
      const s = t.scale.length === 1 ? t.scale[0] : undefined;
      if (s === undefined) {
        throw new LowbitError(
          "UNSUPPORTED",
          `block format '${t.format}' with ${t.scale.length} scales`,
          subject,
        );
      }
      for (let i = 0; i < decoded.length; i++) values[i] = Math.fround(decoded[i] * s);
    } else {
      values = dequantizeAffine(
        t.codes,
        {
          format: t.format,
          granularity: gran,
          mode: t.mode,
          scale: t.scale,
          zeroPoint: t.zeroPoint,
        },
        t.shape,
        name,
      ).data;
    }
    inits.set(name, { dtype: "float32", shape: [...t.shape], data: values });
  }
  // NOTE the opset stays as it is: the executor's DequantizeLinear accepts per-axis
  // scales and int4 codes at any opset, and raising it would change other ops' semantics.
  return {
    ...file.model,
    graph: { ...g, nodes: [...front, ...g.nodes], initializers: inits },
  };
}

/**
 * QDQ ONNX export: QuantizeLinear / DequantizeLinear pairs from per-tensor
 * quantization parameters, the form onnxruntime runs.
 *
 * @module
 */

import { getFormat, LowbitError, roundHalfEven } from "@lowbit/core";
import type { QParams } from "@lowbit/core";
import type { DType, Model, Node, TensorData } from "../ir.ts";
import { constantValue } from "../passes/_const_eval.ts";
import { upgradeOpset } from "../passes/opset.ts";
import { toFloat32 } from "../tensor_data.ts";
import { renameOutputs, renameReads } from "../subgraphs.ts";

interface OnnxQType {
  dtype: DType;
  opset: number;
  qmin: number;
  qmax: number;
  float?: (x: number) => number;
}

/** A float8 format's encoder for one value (core's minifloat codec: nearest, ties to even). */
function f8Encoder(format: string): (x: number) => number {
  const f = getFormat(format);
  const one = new Float32Array(1);
  return (x: number): number => {
    one[0] = x;
    return f.encode(one)[0];
  };
}

const FORMATS: Record<string, OnnxQType> = {
  int8: { dtype: "int8", opset: 13, qmin: -128, qmax: 127 },
  uint8: { dtype: "uint8", opset: 13, qmin: 0, qmax: 255 },
  int16: { dtype: "int16", opset: 21, qmin: -32768, qmax: 32767 },
  uint16: { dtype: "uint16", opset: 21, qmin: 0, qmax: 65535 },
  int4: { dtype: "int4", opset: 21, qmin: -8, qmax: 7 },
  uint4: { dtype: "uint4", opset: 21, qmin: 0, qmax: 15 },
  fp8_e4m3fn: {
    dtype: "float8e4m3fn",
    opset: 19,
    qmin: 0,
    qmax: 0,
    float: f8Encoder("fp8_e4m3fn"),
  },
  fp8_e5m2: { dtype: "float8e5m2", opset: 19, qmin: 0, qmax: 0, float: f8Encoder("fp8_e5m2") },
};

/**
 * The ONNX element type a lowbit format is written as in QDQ ONNX, and the
 * opset it needs; undefined for formats ONNX cannot express (fp4, fp6, MX,
 * NVFP4, ternary, ...).
 *
 * @param format registry format name
 * @returns the dtype and minimum opset, or undefined
 *
 * @example
 * ```ts
 * import { qdqFormat } from "@lowbit/graph";
 * if (qdqFormat("int4")?.opset !== 21 || qdqFormat("mxfp4") !== undefined) throw new Error();
 * ```
 */
export function qdqFormat(format: string): { dtype: DType; opset: number } | undefined {
  const f = FORMATS[format];
  return f ? { dtype: f.dtype, opset: f.opset } : undefined;
}

/** Options of {@link exportQdq}. */
export interface ExportQdqOptions {
  /** Smallest opset to write (the formats may need more). */
  minOpset?: number;
}

const rne = roundHalfEven;

/**
 * Inserts QuantizeLinear / DequantizeLinear for every value in `params`:
 * a weight (float32 initializer or Constant output) is stored already
 * quantized (an initializer of the format's dtype) followed by a
 * DequantizeLinear that produces the original name; an activation gets
 * `QuantizeLinear → DequantizeLinear` and its consumers read the result; on a
 * graph output the producer's output is renamed and the DequantizeLinear writes
 * the output's name, so the output is quantized too (as its readers see it).
 * Per-channel parameters set `axis`;
 * per-group ones set `axis` and `block_size` (opset 21; scales laid out as the
 * tensor's shape with that axis divided by the group size). int8/uint8 need
 * opset 13, float8 e4m3fn/e5m2 19, int4/uint4/int16/uint16 and groups 21: the
 * model is upgraded with {@link upgradeOpset} as far as needed. Rounding is
 * half to even with saturation, as onnxruntime's QuantizeLinear does.
 *
 * @param model the float model (not modified)
 * @param params quantization parameters by value name
 * @param opts minimum opset
 * @returns the QDQ model
 * @throws {LowbitError} `UNSUPPORTED` for formats ONNX cannot express (write a
 *   lowbit file instead); `UNKNOWN_NAME` for a value the graph lacks;
 *   `INVALID_ARGUMENT` for scales that do not match the granularity
 *
 * @example
 * ```ts
 * import { exportQdq, type Model } from "@lowbit/graph";
 * const m: Model = { irVersion: 8, opsets: [{ domain: "", version: 17 }], producerName: "", producerVersion: "",
 *   metadata: {}, graph: { name: "g", valueInfo: new Map(),
 *   initializers: new Map([["w", { dtype: "float32", shape: [2, 2], data: new Float32Array([1, -1, 0.5, 2]) }]]),
 *   inputs: [{ name: "x", dtype: "float32", shape: [1, 2] }], outputs: [{ name: "y", dtype: "float32" }],
 *   nodes: [{ name: "mm", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }] } };
 * const q = exportQdq(m, {
 *   w: { format: "int8", granularity: { kind: "channel", axis: 1 }, mode: "symmetric",
 *        scale: new Float32Array([1 / 127, 2 / 127]), zeroPoint: new Int32Array(2) },
 *   x: { format: "uint8", granularity: { kind: "tensor" }, mode: "affine",
 *        scale: new Float32Array([0.01]), zeroPoint: new Int32Array([128]) },
 * });
 * if (q.graph.nodes.map((n) => n.op).join() !== "DequantizeLinear,QuantizeLinear,DequantizeLinear,MatMul") {
 *   throw new Error();
 * }
 * ```
 */
export function exportQdq(
  model: Model,
  params: Readonly<Record<string, QParams>>,
  opts: ExportQdqOptions = {},
): Model {
  let need = opts.minOpset ?? 13;
  for (const [name, qp] of Object.entries(params)) {
    const f = FORMATS[qp.format];
    if (!f) {
      throw new LowbitError(
        "UNSUPPORTED",
        `format '${qp.format}' has no ONNX QDQ type (int8, uint8, int16, uint16, int4, uint4, ` +
          `fp8_e4m3fn, fp8_e5m2 do): write a lowbit file (writeLowbitFile) instead`,
        { tensor: name },
      );
    }
    need = Math.max(need, f.opset, qp.granularity.kind === "group" ? 21 : 0);
  }
  const m = upgradeOpset(model, need);
  const g = m.graph;
  const inits = new Map(g.initializers);
  const constNodes = new Map<string, Node>();
  const producerIdx = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    for (const o of n.outputs) producerIdx.set(o, i);
    if (n.op === "Constant" && n.outputs.length === 1) constNodes.set(n.outputs[0], n);
  });
  const graphInputs = new Set(g.inputs.map((v) => v.name));
  const graphOutputs = new Set(g.outputs.map((v) => v.name));
  /** Producers' outputs renamed so that a quantized graph output keeps its name. */
  const produced = new Map<string, string>();
  const taken = new Set<string>([...inits.keys(), ...graphInputs, ...producerIdx.keys()]);
  const fresh = (base: string): string => {
    let s = base;
    for (let k = 1; taken.has(s); k++) s = `${base}_${k}`;
    taken.add(s);
    return s;
  };
  const front: Node[] = [];
  const after = new Map<number, Node[]>();
  const rename = new Map<string, string>();
  const dropNodes = new Set<Node>();
  for (const [name, qp] of Object.entries(params)) {
    const f = FORMATS[qp.format];
    const subject = { tensor: name };
    const weight = inits.get(name) ??
      (constNodes.has(name) ? constantValue(constNodes.get(name)!) : undefined);
    const known = weight || graphInputs.has(name) || producerIdx.has(name);
    if (!known) throw new LowbitError("UNKNOWN_NAME", "no such value in the graph", subject);
    const gr = qp.granularity;
    if (gr.kind === "block" || gr.kind === "row" || qp.dynamic) {
      throw new LowbitError(
        "UNSUPPORTED",
        `${gr.kind} granularity${qp.dynamic ? " with run-time scales" : ""} has no QDQ ONNX form`,
        subject,
      );
    }
    const attrs: Node["attrs"] = {};
    if (gr.kind !== "tensor") attrs.axis = { kind: "int", value: gr.axis };
    if (gr.kind === "group") attrs.block_size = { kind: "int", value: gr.size };
    if (qp.zeroPoint.length !== qp.scale.length) {
      throw new LowbitError("INVALID_ARGUMENT", "scale and zeroPoint lengths differ", subject);
    }
    const scaleShape = (shape: number[] | undefined): number[] => {
      if (gr.kind === "tensor") {
        if (qp.scale.length !== 1) {
          throw new LowbitError(
            "INVALID_ARGUMENT",
            "per-tensor parameters need one scale",
            subject,
          );
        }
        return [];
      }
      if (!shape) return [qp.scale.length];
      const ax = gr.axis < 0 ? gr.axis + shape.length : gr.axis;
      if (ax < 0 || ax >= shape.length) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `axis ${gr.axis} out of range for [${shape}]`,
          subject,
        );
      }
      const s = gr.kind === "channel"
        ? [shape[ax]]
        : shape.map((d, i) => (i === ax ? Math.ceil(d / gr.size) : d));
      const n = s.reduce((a, b) => a * b, 1);
      if (n !== qp.scale.length) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `${gr.kind} granularity on [${shape}] needs ${n} scales, got ${qp.scale.length}`,
          subject,
        );
      }
      return s;
    };
    const wShape = weight?.shape;
    const sShape = scaleShape(wShape);
    const scaleName = fresh(`${name}_scale`), zpName = fresh(`${name}_zero_point`);
    inits.set(scaleName, { dtype: "float32", shape: sShape, data: Float32Array.from(qp.scale) });
    const zp = f.float ? new Array<number>(qp.scale.length).fill(0) : Array.from(qp.zeroPoint);
    inits.set(zpName, codesTensor(f, sShape, zp));
    if (weight) {
      if (!weight.dtype.startsWith("float") && weight.dtype !== "bfloat16") {
        throw new LowbitError(
          "UNSUPPORTED",
          `weight of dtype ${weight.dtype} cannot be quantized`,
          subject,
        );
      }
      const x = toFloat32(weight);
      const sIdx = scaleIndex(weight.shape, gr);
      const codes = new Array<number>(x.length);
      for (let i = 0; i < x.length; i++) {
        const k = sIdx(i);
        const v = x[i] / qp.scale[k];
        codes[i] = f.float ? f.float(v) : Math.min(f.qmax, Math.max(f.qmin, rne(v) + zp[k]));
      }
      const qName = fresh(`${name}_quantized`);
      inits.delete(name);
      if (constNodes.has(name)) dropNodes.add(constNodes.get(name)!);
      inits.set(qName, codesTensor(f, [...weight.shape], codes));
      const dqOut = name;
      front.push({
        name: fresh(`${name}_DequantizeLinear`),
        op: "DequantizeLinear",
        domain: "",
        inputs: [qName, scaleName, zpName],
        outputs: [dqOut],
        attrs,
      });
    } else {
      const p = producerIdx.get(name);
      // A graph output made by a node: the node writes a new name, the pair writes the output's.
      const output = p !== undefined && graphOutputs.has(name);
      const src = output ? fresh(`${name}_float`) : name;
      if (output) produced.set(name, src);
      const qOut = fresh(`${name}_quantized`);
      const dqOut = output ? name : fresh(`${name}_dequantized`);
      // Float8 and 4-bit activations: a barrier before Q and after DQ (see fp8Barrier).
      const barrier = f.float !== undefined || f.dtype === "int4" || f.dtype === "uint4";
      const qIn = barrier ? fresh(`${name}_q_in`) : src;
      const dqRaw = barrier ? fresh(`${name}_q_dequantized`) : dqOut;
      const pair: Node[] = [
        ...(barrier ? [fp8Barrier(fresh(`${name}_q_barrier_in`), src, qIn)] : []),
        {
          name: fresh(`${name}_QuantizeLinear`),
          op: "QuantizeLinear",
          domain: "",
          inputs: [qIn, scaleName, zpName],
          outputs: [qOut],
          attrs: { ...attrs },
        },
        {
          name: fresh(`${name}_DequantizeLinear`),
          op: "DequantizeLinear",
          domain: "",
          inputs: [qOut, scaleName, zpName],
          outputs: [dqRaw],
          attrs: { ...attrs },
        },
        ...(barrier ? [fp8Barrier(fresh(`${name}_q_barrier_out`), dqRaw, dqOut)] : []),
      ];
      if (p === undefined) front.push(...pair);
      else after.set(p, [...(after.get(p) ?? []), ...pair]);
      if (!output) rename.set(name, dqOut);
    }
  }
  const nodes: Node[] = [...front];
  g.nodes.forEach((n, i) => {
    if (dropNodes.has(n)) return;
    // Readers inside If / Loop bodies (outer-scope reads) take the new value too.
    nodes.push(renameOutputs(renameReads(n, rename), produced));
    nodes.push(...(after.get(i) ?? []));
  });
  return { ...m, graph: { ...g, nodes, initializers: inits } };
}

/**
 * A one-input Concat (an exact copy) that onnxruntime's QDQ transformers do not look through.
 * onnxruntime-web 1.30 at its default optimisation level mishandles float8 Q/DQ: it fuses
 * DQ → Conv / Gemm → Q into QLinearConv / QGemm (which take no float8 and refuse the model), moves
 * float8 DQ across Unsqueeze / Reshape (whose kernels take no float8) and drops a Relu before a
 * float8 QuantizeLinear as if the codes were unsigned. With a barrier before every float8
 * activation Q and after its DQ none of these patterns is there to match; the values are
 * unchanged. Float8 weights keep DQ → op: a DQ on the weight alone is not fused by onnxruntime
 * (checked on the digits models, openWakeWord's mel and embedding models and PP-OCR cls), and
 * lowbit's executor runs that pattern on its minifloat GEMM. int4 / uint4 activations get the
 * same barriers: onnxruntime-web fuses their DQ → Conv → Q into QLinearConv, which takes no int4
 * ("Type 'tensor(int4)' ... of operator (QLinearConv) is invalid"), and requantizes int4 MatMul
 * inputs with its own rounding (30.9 dB against the QDQ definition on the digits MLP).
 */
function fp8Barrier(name: string, input: string, output: string): Node {
  return {
    name,
    op: "Concat",
    domain: "",
    inputs: [input],
    outputs: [output],
    attrs: { axis: { kind: "int", value: 0 } },
  };
}

function codesTensor(f: OnnxQType, shape: number[], v: number[]): TensorData {
  let data: TensorData["data"];
  switch (f.dtype) {
    case "int8":
    case "int4":
      data = Int8Array.from(v);
      break;
    case "int16":
      data = Int16Array.from(v);
      break;
    case "uint16":
      data = Uint16Array.from(v);
      break;
    default:
      data = Uint8Array.from(v);
  }
  return { dtype: f.dtype, shape, data };
}

/** Maps a flat element index to its scale index under a granularity. */
function scaleIndex(shape: readonly number[], g: QParams["granularity"]): (i: number) => number {
  if (g.kind === "tensor") return () => 0;
  const ax = g.axis < 0 ? g.axis + shape.length : g.axis;
  const dim = shape[ax];
  const inner = shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  if (g.kind === "channel") return (i) => Math.floor(i / inner) % dim;
  if (g.kind !== "group") throw new LowbitError("UNSUPPORTED", `${g.kind} granularity in QDQ`);
  const nb = Math.ceil(dim / g.size);
  return (i) => {
    const o = Math.floor(i / (dim * inner));
    const c = Math.floor(i / inner) % dim;
    return (o * nb + Math.floor(c / g.size)) * inner + (i % inner);
  };
}

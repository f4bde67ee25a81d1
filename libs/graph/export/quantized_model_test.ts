// A quantization point on a graph output quantizes the output itself, in both of the runnable
// graph's forms (QDQ pair, FakeQuant node), and every reader inside the graph sees the same
// values. Hand-derived: h = Relu([1, 0.5, -2, 0.3, 2.6]) = [1, 0.5, 0, 0.3, 2.6];
// - int8, scale 0.4: h / 0.4 = [2.5, 1.25, 0, 0.75, 6.5] → half to even [2, 1, 0, 1, 6]
//   → [0.8, 0.4, 0, 0.4, 2.4];
// - int3 (no QDQ type: a FakeQuant), scale 0.5: [2, 1, 0, 0.6, 5.2] → [2, 1, 0, 1, 3 (clamped)]
//   → [1, 0.5, 0, 0.5, 1.5].
import assert from "node:assert/strict";
import type { QuantPoint } from "@lowbit/core";
import * as ort from "onnxruntime-web";
import { createExecutor } from "../exec/executor.ts";
import { modelOf, nodeOf } from "../model_of.ts";
import { writeOnnx } from "../onnx.ts";
import { materializeQuantized } from "./quantized_model.ts";

const model = modelOf({
  nodes: [nodeOf("r", "Relu", ["x"], ["h"]), nodeOf("n", "Neg", ["h"], ["y"])],
  inputs: [{ name: "x", dtype: "float32", shape: [5] }],
  outputs: [{ name: "h", dtype: "float32" }, { name: "y", dtype: "float32" }],
});
const x = { dtype: "float32" as const, shape: [5], data: Float32Array.of(1, 0.5, -2, 0.3, 2.6) };

const point = (format: string, scale: number): QuantPoint => ({
  value: "h",
  role: "activation",
  quantizer: "uniform",
  params: {
    format,
    granularity: { kind: "tensor" },
    mode: "symmetric",
    scale: Float32Array.of(scale),
    zeroPoint: Int32Array.of(0),
  },
});

const close = (got: Float32Array, want: number[]) =>
  assert.deepEqual([...got].map((v) => Math.round(v * 1e6) / 1e6), want);

for (
  const [format, scale, want, op] of [
    ["int8", 0.4, [0.8, 0.4, 0, 0.4, 2.4], "DequantizeLinear"],
    ["int3", 0.5, [1, 0.5, 0, 0.5, 1.5], "FakeQuant"],
  ] as const
) {
  Deno.test(`materializeQuantized: a point on a graph output quantizes it (${format}, ${op})`, async () => {
    const m = materializeQuantized(model, [point(format, scale)]);
    assert.deepEqual(m.graph.outputs.map((o) => o.name), ["h", "y"]);
    assert.equal(m.graph.nodes.find((n) => n.outputs.includes("h"))?.op, op);
    const out = await createExecutor(m).run({ x });
    close(out.h.data as Float32Array, [...want]);
    close(out.y.data as Float32Array, want.map((v) => -v));
    if (op === "DequantizeLinear") {
      // onnxruntime-web reads the QDQ file the same way
      const s = await ort.InferenceSession.create(writeOnnx(m));
      const r = await s.run({ x: new ort.Tensor("float32", x.data, [5]) });
      close(r.h.data as Float32Array, [...want]);
      close(r.y.data as Float32Array, want.map((v) => -v));
    }
  });
}

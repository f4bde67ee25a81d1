// float16 / bfloat16 models: a small CNN + MLP graph with fp16 weights and activations against
// onnxruntime-web (which also widens fp16 to f32 for ops without fp16 kernels), and the same
// graph in bf16 against our float32 run rounded to bf16.

import assert from "node:assert/strict";
import type { Attr, DType, Graph, TensorData } from "../ir.ts";
import { fromFloat32, toFloat32 } from "../tensor_data.ts";
import { createExecutor } from "./executor.ts";
import { assertClose, pattern } from "./_testing.ts";
import { graphOf, matchOrt, modelOf, node } from "./_ort_testing.ts";

const ints = (value: number[]): Attr => ({ kind: "ints", value });
const int = (value: number): Attr => ({ kind: "int", value });

function cast(t: TensorData, dtype: DType): TensorData {
  return dtype === "float32" ? t : fromFloat32(t.data as Float32Array, t.shape, dtype);
}

/** The test graph with every float tensor (inputs, weights, outputs) in `dtype`. */
function net(dtype: DType): { graph: Graph; x: TensorData } {
  const x = cast(pattern([1, 3, 8, 8], 1), dtype);
  const w = (shape: number[], seed: number, amp = 0.5) => cast(pattern(shape, seed, amp), dtype);
  const init = {
    w1: w([4, 3, 3, 3], 2),
    b1: w([4], 3),
    w2: w([4, 4, 1, 1], 4),
    scale: w([4], 5),
    bias: w([4], 6),
    mean: w([4], 7, 0.1),
    variance: cast(
      { dtype: "float32", shape: [4], data: new Float32Array([1, 0.5, 2, 1.5]) },
      dtype,
    ),
    half: cast({ dtype: "float32", shape: [], data: new Float32Array([0.5]) }, dtype),
    wg: w([5, 4], 8),
    bg: w([5], 9),
    wm: w([5, 3], 10),
    shape: { dtype: "int64" as const, shape: [2], data: new BigInt64Array([1n, -1n]) },
  };
  const graph = graphOf(
    "half",
    [
      node("Conv", ["x", "w1", "b1"], ["c1"], { pads: ints([1, 1, 1, 1]) }),
      node("Relu", ["c1"], ["r1"]),
      node("Conv", ["r1", "w2"], ["c2"]),
      node("BatchNormalization", ["c2", "scale", "bias", "mean", "variance"], ["bn"]),
      node("Add", ["bn", "r1"], ["res"]),
      node("Mul", ["res", "half"], ["m"]),
      node("Sigmoid", ["m"], ["s"]),
      node("MaxPool", ["s"], ["mp"], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }),
      node("GlobalAveragePool", ["mp"], ["gap"]),
      node("Flatten", ["gap"], ["flat"]),
      node("Gemm", ["flat", "wg", "bg"], ["logits"], { transB: int(1) }),
      node("Softmax", ["logits"], ["probs"]),
      node("Transpose", ["mp"], ["tp"], { perm: ints([0, 2, 3, 1]) }),
      node("Reshape", ["tp", "shape"], ["rs"]),
      node("Slice", ["rs", "s0", "s1", "ax1"], ["sl"]),
      node("Reshape", ["sl", "shape3"], ["sl3"]),
      node("MatMul", ["sl3", "wmT"], ["mm"]),
      node("Transpose", ["wm"], ["wmT"]),
      node("Concat", ["mm", "logits"], ["cat"], { axis: int(1) }),
    ],
    { x },
    [
      { name: "probs", dtype, shape: [1, 5] },
      { name: "cat", dtype, shape: [1, 10] },
    ],
    {
      ...init,
      s0: { dtype: "int64", shape: [1], data: new BigInt64Array([0n]) },
      s1: { dtype: "int64", shape: [1], data: new BigInt64Array([12n]) },
      ax1: { dtype: "int64", shape: [1], data: new BigInt64Array([1n]) },
      shape3: { dtype: "int64", shape: [2], data: new BigInt64Array([4n, 3n]) },
    },
  );
  // mm is [4, 5]: keep its first row as [1, 5] for the Concat
  graph.nodes.push(node("Slice", ["mm", "z1", "o1"], ["mm1"]));
  graph.nodes.find((n) => n.op === "Concat")!.inputs[0] = "mm1";
  graph.initializers.set("z1", { dtype: "int64", shape: [1], data: new BigInt64Array([0n]) });
  graph.initializers.set("o1", { dtype: "int64", shape: [1], data: new BigInt64Array([1n]) });
  return { graph, x };
}

Deno.test("a float16 model runs like onnxruntime-web (fp16 outputs)", async () => {
  const { graph, x } = net("float16");
  const out = await matchOrt("fp16", modelOf(graph), { x }, 4e-3, 1e-3);
  assert.equal(out.probs.dtype, "float16");
  // and close to the float32 model
  const f = net("float32");
  const ref = await createExecutor(f.graph).run({ x: f.x });
  assertClose(toFloat32(out.cat), ref.cat.data as Float32Array, 2e-2, 5e-3, "fp16 vs fp32");
});

Deno.test("a bfloat16 model runs: each op in f32, rounded to bf16", async () => {
  const { graph, x } = net("bfloat16");
  for (const fuse of [true, false]) {
    const out = await createExecutor(graph, { fuse }).run({ x });
    assert.equal(out.cat.dtype, "bfloat16");
    const f = net("float32");
    const ref = await createExecutor(f.graph).run({ x: cast(toF32t(x), "float32") });
    // bf16 keeps 8 significant bits: 2^-8 relative per rounding, a few roundings deep
    assertClose(toFloat32(out.cat), ref.cat.data as Float32Array, 0.05, 0.02, "bf16 vs f32");
    assertClose(toFloat32(out.probs), ref.probs.data as Float32Array, 0.05, 0.01, "bf16 probs");
  }
});

function toF32t(t: TensorData): TensorData {
  return { dtype: "float32", shape: t.shape, data: toFloat32(t) };
}

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import type { Graph, TensorData } from "../ir.ts";
import { nodeOf as node } from "../model_of.ts";
import { createExecutor } from "./executor.ts";
import { supportedOps } from "./ops/table.ts";

function chain(): Graph {
  return {
    name: "chain",
    nodes: [
      // Deliberately out of order: the plan must sort them.
      node("mul", "Mul", ["a", "two"], ["b"]),
      node("relu", "Relu", ["x"], ["a"]),
      node("neg", "Neg", ["b"], ["y"]),
    ],
    inputs: [{ name: "x", dtype: "float32", shape: ["batch", 3] }],
    outputs: [{ name: "y", dtype: "float32", shape: ["batch", 3] }],
    initializers: new Map([["two", { dtype: "float32", shape: [], data: new Float32Array([2]) }]]),
    valueInfo: new Map(),
  };
}

const x: TensorData = { dtype: "float32", shape: [1, 3], data: new Float32Array([-1, 1, 2]) };

Deno.test("createExecutor() orders nodes topologically and runs them", async () => {
  const exec = createExecutor(chain());
  assert.deepEqual(exec.plan.map((n) => n.name), ["relu", "mul", "neg"]);
  const { y } = await exec.run({ x });
  assert.deepEqual(Array.from(y.data as Float32Array), [-0, -2, -4]);
});

Deno.test("createExecutor() reports an unsupported op with its node name before running", () => {
  const g = chain();
  g.nodes.push({ ...node("weird", "FancyOp", ["y"], ["z"]) });
  assert.throws(
    () => createExecutor(g),
    (e: unknown) =>
      e instanceof LowbitError && e.code === "UNSUPPORTED" && e.subject.node === "weird" &&
      e.message.includes("FancyOp"),
  );
  const other = chain();
  other.nodes[0] = { ...other.nodes[0], domain: "com.example" };
  assert.throws(
    () => createExecutor(other),
    (e: unknown) => e instanceof LowbitError && e.subject.node === "mul",
  );
});

Deno.test("createExecutor() rejects cycles and dangling inputs", () => {
  const g = chain();
  g.nodes[1] = node("relu", "Relu", ["y"], ["a"]);
  assert.throws(
    () => createExecutor(g),
    (e: unknown) => e instanceof LowbitError && e.message.includes("cycle"),
  );
  const h = chain();
  h.nodes[2] = node("neg", "Neg", ["nowhere"], ["y"]);
  assert.throws(
    () => createExecutor(h),
    (e: unknown) =>
      e instanceof LowbitError && e.code === "UNKNOWN_NAME" && e.subject.tensor === "nowhere",
  );
});

Deno.test("run() rejects inputs of the wrong shape, dtype or name, naming the input", async () => {
  const exec = createExecutor(chain());
  const bad = [
    { x: { dtype: "float32", shape: [1, 4], data: new Float32Array(4) } },
    { x: { dtype: "float32", shape: [3], data: new Float32Array(3) } },
    { x: { dtype: "int32", shape: [1, 3], data: new Int32Array(3) } },
    { x: { dtype: "float32", shape: [1, 3], data: new Float32Array(2) } },
    {},
  ] as Record<string, TensorData>[];
  for (const inputs of bad) {
    await assert.rejects(
      exec.run(inputs),
      (e: unknown) => e instanceof LowbitError && e.subject.tensor === "x",
    );
  }
  await assert.rejects(
    exec.run({ x, extra: x }),
    (e: unknown) => e instanceof LowbitError && e.subject.tensor === "extra",
  );
});

Deno.test("run() calls observe once per watched value per batch", async () => {
  const exec = createExecutor(chain());
  const seen: string[] = [];
  for (let batch = 0; batch < 3; batch++) {
    await exec.run({ x }, { watch: ["a", "x"], observe: (name) => seen.push(name) });
  }
  assert.deepEqual(seen, ["x", "a", "x", "a", "x", "a"]);
  const all: string[] = [];
  await exec.run({ x }, { observe: (name, _t, n) => all.push(`${name}@${n?.name ?? "input"}`) });
  assert.deepEqual(all, ["x@input", "a@relu", "b@mul", "y@neg"]);
});

Deno.test("run() lets transform replace a value for every consumer", async () => {
  const exec = createExecutor(chain());
  const { y, a } = await exec.run({ x }, {
    transform: (name, t) =>
      name === "a" ? { ...t, data: (t.data as Float32Array).map((v) => v + 10) } : undefined,
    outputs: ["y", "a"],
  });
  assert.deepEqual(Array.from(a.data as Float32Array), [10, 11, 12]);
  assert.deepEqual(Array.from(y.data as Float32Array), [-20, -22, -24]);
});

Deno.test("run() wraps op failures in a LowbitError naming the node", async () => {
  const g = chain();
  g.nodes[0] = node("mul", "Mul", ["a", "bad"], ["b"]);
  g.initializers.set("bad", { dtype: "float32", shape: [2], data: new Float32Array(2) });
  await assert.rejects(
    createExecutor(g).run({ x }),
    (e: unknown) =>
      e instanceof LowbitError && e.subject.node === "mul" && e.code === "SHAPE_MISMATCH",
  );
});

Deno.test("supportedOps() lists the required op set", () => {
  const required = [
    "Conv",
    "ConvTranspose",
    "BatchNormalization",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Sqrt",
    "Exp",
    "Log",
    "Neg",
    "Abs",
    "Relu",
    "LeakyRelu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Erf",
    "Gelu",
    "Softmax",
    "LogSoftmax",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Resize",
    "Concat",
    "Split",
    "Slice",
    "Gather",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Expand",
    "Shape",
    "Cast",
    "Constant",
    "ConstantOfShape",
    "Identity",
    "Where",
    "Equal",
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "LayerNormalization",
    "TopK",
    "QuantizeLinear",
    "DequantizeLinear",
  ];
  const have = new Set(supportedOps());
  assert.deepEqual(required.filter((op) => !have.has(op)), []);
  assert.ok(!have.has("QGemmFused"));
});

Deno.test("run() never overwrites inputs or constants when it reuses dying buffers", async () => {
  const g = chain();
  g.nodes.push(node("relu2", "Relu", ["y"], ["z"]));
  g.outputs = [{ name: "z", dtype: "float32" }];
  const exec = createExecutor(g);
  const input = new Float32Array([-1, 1, 2]);
  const first = await exec.run({ x: { dtype: "float32", shape: [1, 3], data: input } });
  const second = await exec.run({ x: { dtype: "float32", shape: [1, 3], data: input } });
  assert.deepEqual(Array.from(input), [-1, 1, 2]);
  assert.deepEqual(Array.from(g.initializers.get("two")!.data as Float32Array), [2]);
  assert.deepEqual(first.z.data, second.z.data);
});

// inlineConstantIfs: hand-built graphs (branch choice, name clashes, a nested If resolved in
// the next round, a bad branch) and Silero VAD v4 with its sample rate bound, whose outputs
// must stay bit-identical while its Convs and LSTMs come up to the main graph.

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import type { Attr, Graph, Node, TensorData } from "../ir.ts";
import { nodeOf as node } from "../model_of.ts";
import { readOnnxFile } from "../onnx_file.ts";
import { createExecutor } from "../exec/executor.ts";
import { inlineConstantIfs } from "./inline_if.ts";
import { quantPoints } from "./quant_points.ts";

const f32 = (v: number[]): TensorData => ({
  dtype: "float32",
  shape: [v.length],
  data: Float32Array.from(v),
});
const bool = (v: boolean): TensorData => ({ dtype: "bool", shape: [], data: new Uint8Array([+v]) });
const g = (value: Graph): Attr => ({ kind: "graph", value });
const graph = (
  name: string,
  nodes: Node[],
  outputs: string[],
  inits: Record<string, TensorData> = {},
): Graph => ({
  name,
  nodes,
  inputs: [],
  outputs: outputs.map((o) => ({ name: o, dtype: "float32" })),
  initializers: new Map(Object.entries(inits)),
  valueInfo: new Map(),
});

Deno.test("inlineConstantIfs takes the constant branch, renames clashes, resolves nested Ifs", async () => {
  // then: t = x + k (its own initializer k, and a value named "y" like the main graph's);
  // else: an If on (c2 = Not(c)) nested inside, resolved once the outer is inlined.
  const then = graph(
    "then",
    [
      node("relu", "Relu", ["x"], ["y"]),
      node("add", "Add", ["y", "k"], ["t"]),
    ],
    ["t"],
    { k: f32([10, 20]) },
  );
  const inner = graph("inner", [node("neg", "Neg", ["x"], ["n"])], ["n"]);
  const els = graph("else", [
    node("not", "Not", ["c"], ["c2"]),
    node("if2", "If", ["c2"], ["e"], { then_branch: g(inner), else_branch: g(inner) }),
  ], ["e"]);
  const main = (c: boolean): Graph => ({
    name: "main",
    nodes: [
      node("relu", "Relu", ["x"], ["y"]),
      node("if", "If", ["c"], ["z"], { then_branch: g(then), else_branch: g(els) }),
      node("sum", "Add", ["y", "z"], ["out"]),
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [2] }],
    outputs: [{ name: "out", dtype: "float32" }],
    initializers: new Map([["c", bool(c)]]),
    valueInfo: new Map(),
  });
  const x = f32([-1, 2]);
  for (const c of [true, false]) {
    const inlined = inlineConstantIfs(main(c));
    assert.ok(inlined.nodes.every((n) => n.op !== "If"), `no If left (c=${c})`);
    const names = inlined.nodes.map((n) => n.name);
    assert.equal(new Set(names).size, names.length, "node names stay unique");
    const outs = inlined.nodes.flatMap((n) => n.outputs);
    assert.equal(new Set(outs).size, outs.length, "values are produced once");
    const got = (await createExecutor(inlined).run({ x })).out.data as Float32Array;
    // hand-derived: relu(x) + (c ? relu(x) + k : -x)
    const want = c ? [0 + 0 + 10, 2 + 2 + 20] : [0 + 1, 2 - 2];
    assert.deepEqual(Array.from(got), want);
  }
  // a graph without constant conditions comes back as it is
  const open: Graph = {
    ...main(true),
    initializers: new Map(),
    inputs: [...main(true).inputs, { name: "c", dtype: "bool", shape: [] }],
  };
  assert.equal(inlineConstantIfs(open), open);
});

Deno.test("inlineConstantIfs refuses a branch whose outputs do not fit the node", () => {
  const two = graph("two", [node("a", "Relu", ["x"], ["p"]), node("b", "Neg", ["x"], ["q"])], [
    "p",
    "q",
  ]);
  const bad: Graph = {
    ...graph("m", [node("if", "If", ["c"], ["z"], { then_branch: g(two), else_branch: g(two) })], [
      "z",
    ], { c: bool(true) }),
    inputs: [{ name: "x", dtype: "float32", shape: [2] }],
  };
  assert.throws(
    () => inlineConstantIfs(bad),
    (e) => e instanceof LowbitError && e.code === "INVALID_ARGUMENT" && e.subject.node === "if",
  );
});

Deno.test("Silero VAD v4 with sr bound: Convs and LSTMs come up, outputs bit-identical", async () => {
  const model = await readOnnxFile("node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx");
  const sr: TensorData = { dtype: "int64", shape: [], data: new BigInt64Array([16000n]) };
  const bound: Graph = {
    ...model.graph,
    inputs: model.graph.inputs.filter((v) => v.name !== "sr"),
    initializers: new Map([...model.graph.initializers, ["sr", sr]]),
  };
  assert.equal(quantPoints(model.graph).length, 0, "everything sits inside If branches");
  const inlined = inlineConstantIfs(bound);
  assert.ok(inlined.nodes.filter((n) => n.op === "LSTM").length === 2);
  assert.ok(quantPoints(inlined).length > 0);
  const audio = new Float32Array(1536).map((_, i) =>
    0.3 * Math.sin(i * 0.05) * Math.sin(i * 0.002)
  );
  const state = () => ({
    dtype: "float32" as const,
    shape: [2, 1, 64],
    data: new Float32Array(128),
  });
  const inputs = {
    input: { dtype: "float32" as const, shape: [1, 1536], data: audio },
    h: state(),
    c: state(),
  };
  const a = await createExecutor({ ...model, graph: inlined }).run(inputs);
  const b = await createExecutor(model).run({ ...inputs, sr });
  for (const k of ["output", "hn", "cn"]) assert.deepEqual(a[k].data, b[k].data, k);
});

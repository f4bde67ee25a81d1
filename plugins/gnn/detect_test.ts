// Detection on the four fixture exports, counted by hand from their node lists (see
// fixtures/gnn/PROVENANCE.md): two message-passing layers each. In the edge-list GCN the other two
// ScatterElements-add nodes sum ones into degrees (no Gather of features): not aggregations.
import assert from "node:assert/strict";
import { foldConstants } from "@lowbit/graph";
import { findAggregations, markAggregations } from "./mod.ts";
import { model } from "./_fixtures.ts";

const brief = (name: string) => async () =>
  findAggregations((await model(name)).graph).map((a) =>
    [a.node, a.style, a.input, a.output, a.degrees.input, a.degrees.kind, a.degrees.row].join(" ")
  );

Deno.test("dense GCN: A·(X W + b) twice, the square input first", async () => {
  assert.deepEqual(await brief("gcn_dense")(), [
    "/MatMul dense /lin1/Gemm_output_0 /MatMul_output_0 adj adjacency -1",
    "/MatMul_1 dense /lin2/Gemm_output_0 logits adj adjacency -1",
  ]);
});

Deno.test("edge-list GCN: the two weighted message scatters, not the two degree scatters", async () => {
  assert.deepEqual(await brief("gcn_edges")(), [
    "/ScatterElements_1 edges /lin1/Gemm_output_0 /ScatterElements_1_output_0 edge_index edges 1",
    "/ScatterElements_3 edges /lin2/Gemm_output_0 /ScatterElements_3_output_0 edge_index edges 1",
  ]);
});

Deno.test("dense and edge-list GIN: sums of x, then of the first layer's output", async () => {
  assert.deepEqual(await brief("gin_dense")(), [
    "/MatMul dense x /MatMul_output_0 adj adjacency -1",
    "/MatMul_1 dense /Relu_output_0 /MatMul_1_output_0 adj adjacency -1",
  ]);
  assert.deepEqual(await brief("gin_edges")(), [
    "/ScatterElements edges x /ScatterElements_output_0 edge_index edges 1",
    "/ScatterElements_1 edges /Relu_output_0 /ScatterElements_1_output_0 edge_index edges 1",
  ]);
});

Deno.test("edge-list GCNs: the self-loop term inside the output only where a layer reads the sum", async () => {
  // aggregating first, Add(scatter, x ⊙ 1/(d + 1)) is /lin1's input (and /Add_4 /lin2's):
  // the output is the sum with the self term, as the dense export's Â·X
  const agg = findAggregations((await model("gcn2_aggfirst_edges")).graph);
  assert.deepEqual(agg.map((a) => [a.input, a.output, a.selfLoops]), [
    ["x", "/Add_1_output_0", "inside"],
    ["/Relu_output_0", "/Add_4_output_0", "inside"],
  ]);
  // transforming first, the Add with the self term goes on to the bias, not to a layer
  const tf = findAggregations((await model("gcn2_edges")).graph);
  assert.deepEqual(tf.map((a) => [a.output, a.selfLoops]), [
    ["/ScatterElements_1_output_0", undefined],
    ["/ScatterElements_3_output_0", undefined],
  ]);
  // a GIN's (1 + ε)·x is a constant times x: not a self-loop term, the sum stays the output
  const gin = findAggregations((await model("gin_edges")).graph);
  assert.ok(gin.every((a) => a.selfLoops === undefined));
});

Deno.test("detection is the same once Constant nodes are folded (as quantize prepares)", async () => {
  for (const name of ["gcn_edges", "gin_edges"]) {
    const g = (await model(name)).graph;
    assert.deepEqual(findAggregations(foldConstants(g)), findAggregations(g));
  }
});

Deno.test("the marker: aggregation inputs and outputs, then later layer inputs, each once", async () => {
  const g = (await model("gin_dense")).graph;
  const specs = markAggregations(g, {});
  assert.deepEqual(specs.map((s) => s.value), [
    "x",
    "/MatMul_output_0",
    "/Relu_output_0",
    "/MatMul_1_output_0",
    "/Add_output_0",
    "/mlp1/mlp1.1/Relu_output_0",
    "/Add_1_output_0",
    "/mlp2/mlp2.1/Relu_output_0",
    "/Relu_1_output_0",
  ]);
  assert.ok(specs.every((s) => s.quantizer === "gnn-degree" && s.reads?.[0] === "adj"));
  // uniform ranges, no protection: the same points with the preset's built-in quantizer
  const uni = markAggregations(g, { "gnn-ranges": "uniform" });
  assert.deepEqual(uni.map((s) => s.value), specs.map((s) => s.value));
  assert.ok(uni.every((s) => s.quantizer === undefined && s.reads === undefined));
  // protection needs degrees even with uniform ranges
  assert.ok(
    markAggregations(g, { "gnn-ranges": "uniform", "gnn-protect": 0.1 })
      .every((s) => s.quantizer === "gnn-degree"),
  );
});

Deno.test("a model without message passing: nothing found", async () => {
  const g = (await model("gcn_dense")).graph;
  const noAdj = { ...g, inputs: g.inputs.map((i) => ({ ...i, shape: ["n", 7] })) };
  assert.deepEqual(findAggregations(noAdj), []);
});

/** A one-node-per-line graph: `[op, inputs, output, attrs]`. */
function graphOf(
  inputs: [string, string, unknown[]][],
  nodes: [string, string[], string, Record<string, unknown>?][],
  initializers: [string, number[]][] = [],
) {
  return {
    inputs: inputs.map(([name, dtype, shape]) => ({ name, dtype, shape })),
    outputs: [{ name: nodes[nodes.length - 1][2] }],
    initializers: new Map(
      initializers.map(([n, v]) => [n, { dtype: "int64", shape: [v.length], data: v }]),
    ),
    nodes: nodes.map(([op, ins, out, attrs], i) => ({
      name: `n${i}`,
      op,
      domain: "",
      inputs: ins,
      outputs: [out],
      attrs: attrs ?? {},
    })),
  } as never;
}

Deno.test("dense mean: A·H divided by A's row sums (clamped), or times their reciprocal", () => {
  const ins: [string, string, unknown[]][] = [["adj", "float32", ["n", "n"]], [
    "x",
    "float32",
    ["n", 4],
  ]];
  const mean = (divide: [string, string[], string][], axes = [1]) =>
    findAggregations(graphOf(ins, [
      ["MatMul", ["adj", "x"], "s"],
      ["ReduceSum", ["adj", "axes"], "deg", { keepdims: 1 }],
      ["Clip", ["deg", "one"], "cnt"],
      ...divide,
      ["Relu", ["m"], "y"],
    ], [["axes", axes], ["one", [1]]])).map((a) => [a.output, a.reduce, a.divide ?? ""].join(" "));
  assert.deepEqual(mean([["Div", ["s", "cnt"], "m"]]), ["m mean n3"]);
  assert.deepEqual(mean([["Div", ["s", "cnt"], "m"]], [-1]), ["m mean n3"]);
  assert.deepEqual(mean([["Reciprocal", ["cnt"], "r"], ["Mul", ["r", "s"], "m"]]), ["m mean n4"]);
  // row sums over axis 0 are out-degrees, and a division by anything else is not a mean: sums
  assert.deepEqual(mean([["Div", ["s", "cnt"], "m"]], [0]), ["s sum "]);
  assert.deepEqual(mean([["Div", ["s", "one"], "m"]]), ["s sum "]);
  assert.deepEqual(mean([["Div", ["cnt", "s"], "m"]]), ["s sum "]);
});

Deno.test("edge-list mean: the count must scatter over the same destinations, not features", () => {
  const ins: [string, string, unknown[]][] = [["x", "float32", ["n", 4]], [
    "ei",
    "int64",
    [2, "e"],
  ]];
  const mean = (
    countIndex: string,
    countUpdates: string,
    clamp: [string, string[], string] = ["Max", ["deg", "onef"], "cnt"],
  ) =>
    findAggregations(graphOf(ins, [
      ["Gather", ["ei", "r0"], "src", { axis: 0 }],
      ["Gather", ["ei", "r1"], "dst", { axis: 0 }],
      ["Gather", ["ei", "r0b"], "src2", { axis: 0 }],
      ["Gather", ["x", "src"], "msg", { axis: 0 }],
      ["Unsqueeze", ["dst", "ax1"], "dst1"],
      ["Expand", ["dst1", "wide"], "idx"],
      ["ScatterElements", ["zeros", "idx", "msg"], "s", { reduction: "add", axis: 0 }],
      ["ScatterElements", ["zeros1", countIndex, countUpdates], "deg", { reduction: "add" }],
      clamp,
      ["Unsqueeze", ["cnt", "ax1"], "cnt1"],
      ["Div", ["s", "cnt1"], "m"],
    ], [["r0", [0]], ["r1", [1]], ["r0b", [0]], ["onef", [1]]])).map((a) =>
      `${a.output} ${a.reduce}`
    );
  assert.deepEqual(mean("dst", "ones"), ["m mean"]);
  // torch_scatter's count[count < 1] = 1: Where(count < 1, 1, count)
  assert.deepEqual(mean("dst", "ones", ["Where", ["low", "onef", "deg"], "cnt"]), ["m mean"]);
  assert.deepEqual(mean("dst", "ones", ["Where", ["low", "deg", "onef"], "cnt"]), ["m mean"]);
  // a choice between two computed tensors is not a clamp
  assert.deepEqual(mean("dst", "ones", ["Where", ["low", "deg", "s"], "cnt"]), ["s sum"]);
  // counted over the sources: out-degrees, not a mean
  assert.deepEqual(mean("src2", "ones"), ["s sum"]);
  // a scatter of gathered features is another sum (an aggregation of its own), not a count
  assert.deepEqual(mean("dst", "msg"), ["s sum", "deg sum"]);
});

Deno.test("self-loops added in the graph: Concat(edge row, Range) is still the edge index", () => {
  const ins: [string, string, unknown[]][] = [["x", "float32", ["n", 4]], [
    "ei",
    "int64",
    [2, "e"],
  ]];
  const found = (loops: [string, string[], string][], parts: string[]) =>
    findAggregations(graphOf(ins, [
      ["Gather", ["ei", "r0"], "src", { axis: 0 }],
      ["Gather", ["ei", "r1"], "dst", { axis: 0 }],
      ...loops,
      ["Concat", parts, "dstl", { axis: 0 }],
      ["Gather", ["x", "src"], "msg", { axis: 0 }],
      ["Unsqueeze", ["dstl", "ax1"], "dst1"],
      ["Expand", ["dst1", "wide"], "idx"],
      ["ScatterElements", ["zeros", "idx", "msg"], "s", { reduction: "add", axis: 0 }],
    ], [["r0", [0]], ["r1", [1]]])).map((a) => `${a.degrees.input} ${a.degrees.row}`);
  const range: [string, string[], string] = ["Range", ["zero", "n", "one"], "loops"];
  assert.deepEqual(found([range], ["dst", "loops"]), ["ei 1"]);
  assert.deepEqual(found([range, ["Cast", ["loops"], "loops64"]], ["loops64", "dst"]), ["ei 1"]);
  // two edge rows, or a row and something that is not a node range: not one destination row
  assert.deepEqual(found([], ["dst", "src"]), []);
  assert.deepEqual(found([["Relu", ["n"], "loops"]], ["dst", "loops"]), []);
  assert.deepEqual(found([range], ["loops"]), []);
});

Deno.test("SAGE (mean), GIN3 and GAT detection is the same once Constant nodes are folded", async () => {
  for (const f of ["sage", "gin3", "gat"].map((m) => `unseen/digits16/${m}_edges`)) {
    const g = (await model(f)).graph;
    assert.deepEqual(findAggregations(foldConstants(g)), findAggregations(g));
  }
});

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

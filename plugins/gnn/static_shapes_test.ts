// withGraphShapes: the fixture's dynamic node / edge axes become the given graph's sizes, so the
// CLI's loader takes each .npy whole; wrong names, dtypes and ranks are errors naming the input.
import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { isWholeInput } from "@lowbit/pipeline";
import { withGraphShapes } from "./mod.ts";
import { graphInputs, model } from "./_fixtures.ts";

Deno.test("gin_edges: x [400, 64] and edge_index [2, 3984] become whole inputs", async () => {
  const m = await model("gin_edges");
  const inputs = await graphInputs("gin_edges");
  assert.deepEqual(m.graph.inputs.map((i) => i.shape), [["nodes", 64], [2, "edges"]]);
  assert.ok(m.graph.inputs.every((vi) => !isWholeInput(inputs[vi.name], vi)));
  const s = withGraphShapes(m, inputs);
  assert.deepEqual(s.graph.inputs.map((i) => i.shape), [[400, 64], [2, 3984]]);
  assert.ok(s.graph.inputs.every((vi) => isWholeInput(inputs[vi.name], vi)));
  assert.deepEqual(m.graph.inputs[0].shape, ["nodes", 64]); // the original is untouched
});

Deno.test("withGraphShapes: unknown input, wrong dtype, a fixed dimension that differs", async () => {
  const m = await model("gin_edges");
  const { x, edge_index } = await graphInputs("gin_edges");
  const err = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof LowbitError);
      return `${e.subject.tensor}: ${e.message}`;
    }
    return "no error";
  };
  assert.match(err(() => withGraphShapes(m, { adj: x })), /^adj: .*inputs are: x, edge_index/);
  assert.match(err(() => withGraphShapes(m, { edge_index: x })), /^edge_index: .*is float32/);
  const wide = { ...x, shape: [200, 128] };
  assert.match(err(() => withGraphShapes(m, { x: wide })), /^x: .*\[200, 128\].*\[nodes, 64\]/);
  assert.equal(err(() => withGraphShapes(m, { edge_index })), "no error");
});

// torch 1.13's index_add / index_put(accumulate) exports (a scatter without reduction into zeros,
// then Add): found, refused by default when a destination repeats, read as torch's sums with
// --gnn-index-add sum. gin_index_add.onnx is made by tools/fixtures/export_gnn_index_add.py (the
// fixture GIN retrained bit for bit; see fixtures/gnn/PROVENANCE.md).
import assert from "node:assert/strict";
import { createRegistry, LowbitError, registerBuiltins, type Registry } from "@lowbit/core";
import {
  createExecutor,
  type Graph,
  type Model,
  modelOf,
  type Node,
  type TensorData,
} from "@lowbit/graph";
import { quantize, simulate } from "@lowbit/pipeline";
import {
  findAggregations,
  findIndexAddExports,
  nodeAccuracy,
  plugin,
  repairIndexAdd,
} from "./mod.ts";
import { graphInputs, model, npy } from "./_fixtures.ts";

function registry(): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e;
}

Deno.test("gin_index_add: two index_add sums found; none in the scatter_add and dense exports", async () => {
  const g = (await model("gin_index_add")).graph;
  const found = findIndexAddExports(g);
  assert.deepEqual(found.map((f) => [f.scatter, f.add, f.index.input, f.index.row]), [
    ["/ScatterElements", "/Add", "edge_index", 1],
    ["/ScatterElements_1", "/Add_2", "edge_index", 1],
  ]);
  // as exported, not an aggregation (no reduction); repaired, two like gin_edges' scatter_adds
  assert.equal(findAggregations(g).length, 0);
  assert.equal(findAggregations(repairIndexAdd(g, found)).length, 2);
  for (const name of ["gin_edges", "gcn_edges", "gin_dense"]) {
    assert.deepEqual(findIndexAddExports((await model(name)).graph), [], name);
  }
});

Deno.test("gin_index_add: as written it is not torch's model; repaired it computes torch's logits", async () => {
  const m = await model("gin_index_add");
  const inputs = await graphInputs("gin_edges");
  const torch = (await npy("gin_index_add_logits.npy")).data as Float32Array; // max |logit| 265
  const asWritten = (await createExecutor(m).run(inputs)).logits.data as Float32Array;
  assert.ok(maxAbs(asWritten, torch) > 100); // one message kept per node instead of the sum
  const graph = repairIndexAdd(m.graph, findIndexAddExports(m.graph));
  const repaired = (await createExecutor({ ...m, graph }).run(inputs)).logits.data as Float32Array;
  assert.ok(maxAbs(repaired, torch) <= 1e-4, String(maxAbs(repaired, torch)));
});

Deno.test({
  name:
    "quantize gin_index_add: refused naming the node; with --gnn-index-add sum, gin_edges' result",
  sanitizeResources: false,
  async fn() {
    const inputs = await graphInputs("gin_edges");
    const m = await model("gin_index_add");
    const e = await quantize({
      model: m,
      calib: { inputs: { ...inputs }, count: 400 },
      preset: "w8a4",
      registry: registry(),
    }).then(() => undefined, (e) => e);
    assert.ok(e instanceof LowbitError, String(e));
    assert.equal(e.code, "UNSUPPORTED");
    assert.equal(e.subject.node, "/ScatterElements");
    assert.match(e.message, /keeps one message per node.*--gnn-index-add sum/);
    const run = async (name: string, pluginOptions: Record<string, string>) => {
      const r = registry();
      const res = await quantize({
        model: name === "gin_index_add" ? m : await model(name),
        calib: { inputs: { ...inputs }, count: 400 },
        preset: "w8a4",
        registry: r,
        pluginOptions,
      });
      return { res, logits: await simulate(res.quantized).run(inputs) };
    };
    const fixed = await run("gin_index_add", { "gnn-index-add": "sum" });
    assert.ok(fixed.res.warnings.some((w) => /index_add-style aggregation\(s\)/.test(w)));
    // the scatter_add export of the same weights, quantized the same way: as many degree points
    const ref = await run("gin_edges", {});
    const points = (r: typeof ref) =>
      r.res.quantized.plan.entries.filter((p) => p.quantizer === "gnn-degree").length;
    assert.equal(points(fixed), 9);
    assert.equal(points(fixed), points(ref));
    const y = await npy("y.npy"), mask = await npy("test_mask.npy");
    const acc = (l: TensorData) => nodeAccuracy(l, y.data, mask.data).accuracy;
    assert.equal(acc(fixed.logits), acc(ref.logits));
    assert.ok(acc(fixed.logits) >= 208 / 240 - 0.03); // within 3 points of float (86.67 %)
  },
});

Deno.test("index_put(accumulate) style: ScatterND without reduction into zeros, repaired to sums", async () => {
  // 3 nodes, features h [3, 2]; edges 0→1, 2→1, 1→2 (row 0 src, row 1 dst)
  const n = (op: string, inputs: string[], outputs: string[], attrs = {}): Node =>
    ({ name: outputs[0], op, domain: "", inputs, outputs, attrs }) as Node;
  const i64 = (v: number[], shape: number[]): TensorData => ({
    dtype: "int64",
    shape,
    data: BigInt64Array.from(v.map(BigInt)),
  });
  const graph: Graph = {
    name: "index_put",
    inputs: [{ name: "h", dtype: "float32" }, { name: "ei", dtype: "int64" }],
    outputs: [{ name: "y", dtype: "float32" }],
    nodes: [
      n("Gather", ["ei", "one"], ["dst"]),
      n("Gather", ["ei", "zero"], ["src"]),
      n("Unsqueeze", ["dst", "axes"], ["dst1"]),
      n("Gather", ["h", "src"], ["msg"]),
      n("Shape", ["h"], ["s"]),
      n("ConstantOfShape", ["s"], ["z"]),
      n("ScatterND", ["z", "dst1", "msg"], ["sc"]),
      n("Add", ["z", "sc"], ["y"]),
    ],
    initializers: new Map([
      ["one", i64([1], [])],
      ["zero", i64([0], [])],
      ["axes", i64([1], [1])],
    ]),
    valueInfo: new Map(),
  };
  const h: TensorData = {
    dtype: "float32",
    shape: [3, 2],
    data: Float32Array.of(1, 2, 3, 4, 5, 6),
  };
  const ei = i64([0, 2, 1, 1, 1, 2], [2, 3]);
  const found = findIndexAddExports(graph);
  assert.deepEqual(found.map((f) => [f.scatter, f.index.row]), [["sc", 1]]);
  const fixed = repairIndexAdd(graph, found);
  const m = (g: Graph): Model => modelOf(g, { opset: 16, producerName: "hand" });
  const y = await createExecutor(m(graph)).run({ h, ei });
  const yFixed = await createExecutor(m(fixed)).run({ h, ei });
  // sums by hand: node 0 none; node 1 = h0 + h2 = (6, 8); node 2 = h1 = (3, 4)
  assert.deepEqual([...yFixed.y.data as Float32Array], [0, 0, 6, 8, 3, 4]);
  // as written, node 1 keeps one of its two messages
  assert.notDeepEqual([...y.y.data as Float32Array], [0, 0, 6, 8, 3, 4]);
});

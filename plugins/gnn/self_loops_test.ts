// The self-loop term of GCN aggregations (self_loops.ts, detect.ts): on a hand graph the
// neighbours' sum and the self term are derived by hand; on the fixtures the dense and the edge-list
// export of one trained GCN (torch's two exports of the same weights; the edge list adds the self
// term after the scatter: fixtures/gnn/PROVENANCE.md) get the same points and quantized logits —
// transforming first, the dense sum split; aggregating first, the edge-list sum taken with its self
// term, as the layer reads it.
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins, type Registry } from "@lowbit/core";
import {
  createExecutor,
  decodeLowbitFile,
  lowbitModel,
  modelOf,
  nodeOf,
  type TensorData,
} from "@lowbit/graph";
import { encodeLowbitModel, quantize, type QuantizedModel, simulate } from "@lowbit/pipeline";
import { findAggregations, plugin, SELF_LOOP_SUFFIX, splitSelfLoops } from "./mod.ts";
import { graphInputs, model, npy } from "./_fixtures.ts";

const f32 = (shape: number[], v: number[]): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(v),
});

function registry(): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

Deno.test("hand graph: Y = Â·Z split into the neighbours' sum and diag(Â)·Z, Y unchanged", async () => {
  // 3 nodes on a path 0 – 1 – 2, Â with self-loops; Z = [[1, 2], [3, 4], [5, 6]]
  const adj = f32([3, 3], [0.5, 0.5, 0, 0.25, 0.5, 0.25, 0, 0.5, 0.5]);
  const z = f32([3, 2], [1, 2, 3, 4, 5, 6]);
  const m = modelOf({
    nodes: [nodeOf("agg", "MatMul", ["adj", "z"], ["y"])],
    inputs: [{ name: "adj", dtype: "float32", shape: ["n", "n"] }, {
      name: "z",
      dtype: "float32",
      shape: ["n", 2],
    }],
    outputs: [{ name: "y", dtype: "float32" }],
  });
  const [agg] = findAggregations(m.graph);
  assert.equal(agg.output, "y");
  const split = { ...m, graph: splitSelfLoops(m.graph, [agg]) };
  const [after] = findAggregations(split.graph);
  assert.equal(after.output, "y" + SELF_LOOP_SUFFIX.neighbours);
  assert.equal(after.selfLoops, "split");
  assert.equal(after.input, "z");
  const seen: Record<string, number[]> = {};
  const out = await createExecutor(split).run({ adj, z }, {
    watch: ["y" + SELF_LOOP_SUFFIX.self, "y" + SELF_LOOP_SUFFIX.neighbours],
    observe: (name, t) => (seen[name] = [...(t.data as Float32Array)]),
  });
  // self term: Â_ii · z_i = 0.5 · z_i
  assert.deepEqual(seen["y" + SELF_LOOP_SUFFIX.self], [0.5, 1, 1.5, 2, 2.5, 3]);
  // neighbours: 0.5·z1, 0.25·(z0 + z2), 0.5·z1
  assert.deepEqual(seen["y" + SELF_LOOP_SUFFIX.neighbours], [1.5, 2, 1.5, 2, 1.5, 2]);
  // Â·Z: [2, 3], [3, 4], [4, 5]
  assert.deepEqual([...(out.y.data as Float32Array)], [2, 3, 3, 4, 4, 5]);
  // split twice: the detection already sees the neighbours' sum, nothing more to split
  assert.deepEqual(splitSelfLoops(split.graph, [after]).nodes, split.graph.nodes);
});

Deno.test("the stage splits gcn2_dense (Â has a diagonal); not gin_dense (binary A), nor (Â·X)·W", async () => {
  for (
    const [name, options, splits] of [
      ["gcn2_dense", {}, 2],
      ["gcn2_dense", { "gnn-self-loops": "inside" }, 0],
      ["gin_dense", {}, 0],
      // aggregating first, both aggregation outputs are layer inputs (/lin1, /lin2): each sum is
      // quantized once, as that layer's input
      ["gcn2_aggfirst_dense", {}, 0],
    ] as const
  ) {
    const inputs = await graphInputs(name);
    const { quantized } = await quantize({
      model: await model(name),
      calib: { inputs: { ...inputs }, count: 400 },
      preset: "w8a4",
      registry: registry(),
      pluginOptions: options,
    });
    const eyes = quantized.model.graph.nodes.filter((n) => n.op === "EyeLike").length;
    assert.equal(eyes, splits, `${name} ${JSON.stringify(options)}`);
    const outs = findAggregations(quantized.model.graph).map((a) => a.output);
    assert.equal(outs.filter((o) => o.endsWith(SELF_LOOP_SUFFIX.neighbours)).length, splits);
  }
  // the split float model still computes torch's logits
  const g = (await model("gcn2_dense")).graph;
  const split = { ...(await model("gcn2_dense")), graph: splitSelfLoops(g, findAggregations(g)) };
  const got = (await createExecutor(split).run(await graphInputs("gcn2_dense"))).logits
    .data as Float32Array;
  const want = (await npy("gcn2_dense_logits.npy")).data as Float32Array;
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  assert.ok(err < 1e-4, `max abs error ${err}`);
});

type Run = { quantized: QuantizedModel; logits: TensorData };

/** Two exports' quantized models: the same number of points, parameters and logits alike. */
function agree(dense: Run, edges: Run, count: number): void {
  // the points: the same values (named by each export), the same parameters
  const points = (q: Run) =>
    q.quantized.plan.entries.filter((e) => e.role === "activation" && !e.skip);
  const [pd, pe] = [points(dense), points(edges)];
  assert.equal(pd.length, count);
  assert.equal(pe.length, count);
  for (let i = 0; i < pd.length; i++) {
    const [a, b] = [pd[i].scale!, pe[i].scale!];
    assert.equal(a.length, b.length, pd[i].value);
    a.forEach((s, k) => assert.ok(Math.abs(s - b[k]) <= 1e-5 * Math.abs(b[k]), pd[i].value));
  }
  const [a, b] = [dense.logits.data as Float32Array, edges.logits.data as Float32Array];
  let err = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    max = Math.max(max, Math.abs(b[i]));
  }
  assert.ok(err < 1e-3 * max, `max abs difference ${err} (max |logit| ${max})`);
}

Deno.test({
  name: "dense and edge-list exports of one GCN quantize alike (both orders); .lowbit runs exactly",
  sanitizeResources: false,
  async fn() {
    const run = async (name: string) => {
      const inputs = await graphInputs(name);
      const r = registry();
      const { quantized } = await quantize({
        model: await model(name),
        calib: { inputs: { ...inputs }, count: 400 },
        preset: "w8a4",
        registry: r,
      });
      return { quantized, inputs, r, logits: await simulate(quantized).run(inputs) };
    };
    for (const pair of ["gcn", "gcn2", "gcn2_aggfirst"]) {
      const dense = await run(`${pair}_dense`), edges = await run(`${pair}_edges`);
      agree(dense, edges, pair === "gcn2_aggfirst" ? 4 : 6);
    }
    const dense = await run("gcn2_dense");
    // the .lowbit file of the split model reproduces the simulation bit for bit
    const loaded = lowbitModel(decodeLowbitFile(encodeLowbitModel(dense.quantized)), {
      registry: dense.r,
    });
    const out = await createExecutor(loaded, { registry: dense.r }).run(dense.inputs);
    assert.deepEqual(out.logits.data, dense.logits.data);
  },
});

Deno.test("a replayed plan splits what it was made with, without calibration data (gcn2_dense)", async () => {
  const r = registry();
  const m = await model("gcn2_dense");
  const inputs = await graphInputs("gcn2_dense");
  const made = await quantize({
    model: m,
    calib: { inputs, count: 1 },
    preset: "w8a4",
    registry: r,
  });
  const values = made.quantized.plan.entries.map((e) => e.value);
  assert.ok(values.includes("/MatMul_output_0" + SELF_LOOP_SUFFIX.neighbours), values.join());
  // the plan as `--plan` gives it, no --calib: same split, same model
  const replay = await quantize({ model: m, plan: made.quantized.plan, registry: r });
  const run = async (q: QuantizedModel) => (await simulate(q).run(inputs)).data as Float32Array;
  assert.deepEqual(await run(replay.quantized), await run(made.quantized));
});

// The plugin on GNNs it was not developed on (fixtures/gnn/unseen, see its PROVENANCE.md):
// GraphSAGE with PyG's mean aggregation (scatter_add / clamped in-degree) and GAT (two heads,
// self-loops added in the graph) on two other graphs, and a 3-layer GIN with BatchNorm and a
// jumping-knowledge readout. Float: our executor against
// onnxruntime-web and torch; w8a4: the plugin finds the mean aggregations and quantizes every
// model within 3 points of torch's test accuracy, its .lowbit file running to the simulation.
import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { chooseQParams, createRegistry, registerBuiltins } from "@lowbit/core";
import {
  createExecutor,
  decodeLowbitFile,
  lowbitModel,
  readNpy,
  readOnnx,
  readOnnxFile,
  type TensorData,
} from "@lowbit/graph";
import { encodeLowbitModel, encodeQuantized, quantize, simulate } from "@lowbit/pipeline";
import { findAggregations, nodeAccuracy, plugin } from "./mod.ts";
import { FIX } from "./_fixtures.ts";

ort.env.wasm.numThreads = 1;

const npy = async (dir: string, f: string): Promise<TensorData> =>
  readNpy(await Deno.readFile(`${FIX}unseen/${dir}/${f}`), f);

async function load(dir: string, name: string) {
  const [x, edge_index, y, mask, torch] = await Promise.all(
    ["x", "edge_index", "y", "test_mask", `${name}_logits`].map((f) => npy(dir, `${f}.npy`)),
  );
  const model = await readOnnxFile(`${FIX}unseen/${dir}/${name}.onnx`);
  const acc = (l: TensorData): number => nodeAccuracy(l, y.data, mask.data).accuracy;
  return { model, inputs: { x, edge_index }, torch, acc, tests: mask.shape[0] };
}

// [graph folder, model, torch's test accuracy (fixtures/gnn/unseen/summary.json) as hits / nodes]
const MODELS: [string, string, number, number][] = [
  ["digits16", "sage_edges", 264, 320],
  ["digits16", "gin3_edges", 243, 320],
  ["digits16", "gat_edges", 234, 320],
  ["cancer", "sage_edges", 390, 399],
  ["cancer", "gat_edges", 369, 399],
];

Deno.test("unseen models: the means (SAGE), three sums (GIN), attention sums (GAT) found", async () => {
  const brief = async (dir: string, name: string) =>
    findAggregations((await load(dir, name)).model.graph).map((a) =>
      [a.node, a.input, a.output, a.reduce, a.degrees.input, a.degrees.row].join(" ")
    );
  // SAGE: scatter_add of the messages, divided by the clamped scatter_add of ones (the count
  // scatter /ScatterElements is not an aggregation); the means are the outputs
  const sage = [
    "/ScatterElements_1 x /Div_output_0 mean edge_index 1",
    "/ScatterElements_2 /Relu_output_0 /Div_1_output_0 mean edge_index 1",
  ];
  assert.deepEqual(await brief("digits16", "sage_edges"), sage);
  assert.deepEqual(await brief("cancer", "sage_edges"), sage);
  assert.deepEqual(await brief("digits16", "gin3_edges"), [
    "/ScatterElements x /ScatterElements_output_0 sum edge_index 1",
    "/ScatterElements_1 /Relu_output_0 /ScatterElements_1_output_0 sum edge_index 1",
    "/ScatterElements_2 /Relu_1_output_0 /ScatterElements_2_output_0 sum edge_index 1",
  ]);
  // GAT: the destinations are Concat(edge_index[1], Range(nodes)) (the self-loops); the weighted
  // messages of [nodes, heads, C] features are summed by /ScatterElements_1 and _3, while
  // /ScatterElements and _2 sum exp(attention logits) (the softmax denominators: no features)
  const gat = [
    "/ScatterElements_1 /Reshape_output_0 /ScatterElements_1_output_0 sum edge_index 1",
    "/ScatterElements_3 /Reshape_3_output_0 /ScatterElements_3_output_0 sum edge_index 1",
  ];
  assert.deepEqual(await brief("digits16", "gat_edges"), gat);
  assert.deepEqual(await brief("cancer", "gat_edges"), gat);
});

for (const [dir, name, hits, nodes] of MODELS) {
  Deno.test({
    name: `unseen ${dir}/${name}: float matches onnxruntime-web and torch`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const { model, inputs, torch, acc } = await load(dir, name);
      const ours = (await createExecutor(model).run(inputs)).logits;
      const session = await ort.InferenceSession.create(
        await Deno.readFile(`${FIX}unseen/${dir}/${name}.onnx`),
      );
      const theirs = (await session.run({
        x: new ort.Tensor("float32", inputs.x.data as Float32Array, [...inputs.x.shape]),
        edge_index: new ort.Tensor("int64", inputs.edge_index.data as BigInt64Array, [
          ...inputs.edge_index.shape,
        ]),
      })).logits.data as Float32Array;
      const got = ours.data as Float32Array, ref = torch.data as Float32Array;
      let eOrt = 0, eTorch = 0, max = 0;
      for (let i = 0; i < got.length; i++) {
        eOrt = Math.max(eOrt, Math.abs(got[i] - theirs[i]));
        eTorch = Math.max(eTorch, Math.abs(got[i] - ref[i]));
        max = Math.max(max, Math.abs(ref[i]));
      }
      assert.ok(eOrt <= 2e-6 * max + 1e-5, `vs onnxruntime-web: ${eOrt} (max ${max})`);
      assert.ok(eTorch <= 1e-6 * max + 1e-4, `vs torch: ${eTorch} (max ${max})`);
      assert.equal(acc(ours), hits / nodes);
    },
  });
}

Deno.test({
  name: "unseen models at w8a4: degree-aware points, within 3 points of float, ≥ uniform",
  sanitizeResources: false,
  async fn() {
    for (const [dir, name, hits, nodes] of MODELS) {
      const { model, inputs, acc } = await load(dir, name);
      const run = async (pluginOptions: Record<string, string>) => {
        const registry = createRegistry();
        registerBuiltins(registry);
        registry.use(plugin);
        const { quantized } = await quantize({
          model,
          calib: { inputs: { ...inputs }, count: inputs.x.shape[0] },
          preset: "w8a4",
          registry,
          pluginOptions,
        });
        const points = quantized.plan.entries.filter((e) =>
          e.role === "activation" && !e.skip && e.by === "gnn-aggregations"
        );
        const sim = await simulate(quantized).run(inputs);
        // the .lowbit file (its FakeQuant nodes call the plugin's quantizer) runs to the same
        const file = lowbitModel(decodeLowbitFile(encodeLowbitModel(quantized)), { registry });
        const run = await createExecutor(file, { registry }).run(inputs);
        assert.deepEqual(run.logits.data, sim.data, name);
        return { points, acc: acc(sim) };
      };
      const deg = await run({});
      const uni = await run({ "gnn-ranges": "uniform" });
      const aggs = findAggregations(model.graph);
      // every aggregation input and output is a degree-aware point; a mean's sum is not
      for (const a of aggs) {
        for (const v of [a.input, a.output]) {
          assert.ok(deg.points.some((e) => e.value === v && e.quantizer === "gnn-degree"), v);
        }
        if (a.reduce === "mean") assert.ok(!deg.points.some((e) => e.value.includes(a.node)));
      }
      const a = { name, float: hits / nodes, degree: deg.acc, uniform: uni.acc };
      assert.ok(a.degree >= a.float - 0.03, JSON.stringify(a));
      assert.ok(a.degree >= a.uniform, JSON.stringify(a));
    }
  },
});

Deno.test({
  name: "GAT's [nodes, heads, C] points with --gnn-bins 1: one range per head, per-axis QDQ",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { model, inputs } = await load("digits16", "gat_edges");
    const registry = createRegistry();
    registerBuiltins(registry);
    registry.use(plugin);
    const { quantized } = await quantize({
      model,
      calib: { inputs: { ...inputs }, count: 400 },
      preset: "w8a4",
      registry,
      pluginOptions: { "gnn-bins": 1, "gnn-fit": "minmax" },
    });
    // the first layer's features h = lin1(x).view(-1, 2, 16), the aggregation's input
    const e = quantized.plan.entries.find((e) => e.value === "/Reshape_output_0" && !e.skip)!;
    assert.deepEqual(e.granularity, { kind: "channel", axis: 1 });
    const h = (await createExecutor(model).run(inputs, { outputs: [e.value] }))[e.value];
    assert.deepEqual(h.shape, [400, 2, 16]);
    // min / max of each head over every node and its 16 features, by hand
    const min = [Infinity, Infinity], max = [-Infinity, -Infinity];
    (h.data as Float32Array).forEach((v, i) => {
      const head = Math.floor(i / 16) % 2;
      min[head] = Math.min(min[head], v), max[head] = Math.max(max[head], v);
    });
    const want = chooseQParams({ min: Float32Array.from(min), max: Float32Array.from(max) }, {
      format: "int4",
      granularity: { kind: "channel", axis: 0 },
      mode: e.mode!,
    });
    assert.deepEqual(e.scale, [...want.scale]);
    assert.deepEqual(e.zeroPoint, [...want.zeroPoint]);
    // the QDQ ONNX file runs (our executor: the simulation; onnxruntime-web: our executor)
    const bytes = encodeQuantized(quantized, "m.onnx");
    const sim = (await simulate(quantized).run(inputs)).data as Float32Array;
    const out = (await createExecutor(readOnnx(bytes)).run(inputs)).logits.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < sim.length; i++) worst = Math.max(worst, Math.abs(out[i] - sim[i]));
    assert.ok(worst < 1e-4, `largest difference ${worst}`);
    const session = await ort.InferenceSession.create(bytes);
    const res = await session.run({
      x: new ort.Tensor("float32", inputs.x.data as Float32Array, [...inputs.x.shape]),
      edge_index: new ort.Tensor("int64", inputs.edge_index.data as BigInt64Array, [
        ...inputs.edge_index.shape,
      ]),
    });
    const theirs = res.logits.data as Float32Array;
    let worstOrt = 0;
    for (let i = 0; i < out.length; i++) {
      worstOrt = Math.max(worstOrt, Math.abs(out[i] - theirs[i]));
    }
    assert.ok(worstOrt < 1e-5, `onnxruntime-web: largest difference ${worstOrt}`);
  },
});

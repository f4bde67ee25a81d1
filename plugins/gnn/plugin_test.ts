// The plugin end to end on the fixtures (the whole 400-node graph is one sample): accuracy of
// degree-aware against uniform ranges at w8a4 (aggregations int4), the .lowbit file run by
// `lowbit run` reproducing the simulation bit for bit, the mixed search's ties, and bad inputs.
import assert from "node:assert/strict";
import { createRegistry, LowbitError, registerBuiltins, type Registry } from "@lowbit/core";
import {
  createExecutor,
  decodeLowbitFile,
  lowbitModel,
  readNpy,
  type TensorData,
} from "@lowbit/graph";
import { encodeLowbitModel, quantize, simulate } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";
import { graphMixedSearch, nodeAccuracy, plugin, SELF_LOOP_SUFFIX } from "./mod.ts";
import { graphInputs, model, npy } from "./_fixtures.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const y = await npy("y.npy"), mask = await npy("test_mask.npy");
const acc = (logits: TensorData): number => nodeAccuracy(logits, y.data, mask.data).accuracy;

function registry(): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

/** Quantizes an export at w8a4 with the plugin, calibration data as the CLI loads it. */
async function w8a4(name: string, pluginOptions: Record<string, string | number> = {}) {
  const inputs = await graphInputs(name);
  const r = registry();
  const { quantized } = await quantize({
    model: await model(name),
    calib: { inputs: { ...inputs }, count: 400 },
    preset: "w8a4",
    registry: r,
    pluginOptions,
  });
  return { quantized, inputs, registry: r };
}

Deno.test({
  name: "GIN (edge list) at w8a4: degree-aware ≥ uniform + 3 points, within 3 of float",
  sanitizeResources: false,
  async fn() {
    const inputs = await graphInputs("gin_edges");
    const float = acc((await createExecutor(await model("gin_edges")).run(inputs)).logits);
    // torch's test accuracy of this export (fixtures/gnn/summary.json): 208 of 240
    assert.equal(float, 208 / 240);
    const uni = await w8a4("gin_edges", { "gnn-ranges": "uniform" });
    const deg = await w8a4("gin_edges");
    const entries = (q: typeof uni) =>
      q.quantized.plan.entries.filter((e) => e.role === "activation" && !e.skip)
        .map((e) => e.value).sort();
    assert.deepEqual(entries(deg), entries(uni)); // the same points (layer inputs taken over)
    assert.equal(entries(deg).length, 9);
    const a = {
      uniform: acc(await simulate(uni.quantized).run(inputs)),
      degree: acc(await simulate(deg.quantized).run(inputs)),
    };
    assert.ok(a.degree >= a.uniform + 0.03, JSON.stringify(a));
    assert.ok(a.degree >= float - 0.03, JSON.stringify({ ...a, float }));
  },
});

Deno.test({
  name: "GCN aggregating first (gcn2_aggfirst, dense and edges) and transforming first " +
    "(gcn2_dense, self-loops split; gcn2_edges) at w8a4: degree ≥ uniform + 3, within 3 of float",
  sanitizeResources: false,
  async fn() {
    for (const name of ["gcn2_aggfirst_dense", "gcn2_aggfirst_edges", "gcn2_dense", "gcn2_edges"]) {
      const inputs = await graphInputs(name);
      const float = acc((await createExecutor(await model(name)).run(inputs)).logits);
      // torch's test accuracy of the export (its logits file): 217 of 240
      assert.equal(float, acc(await npy(`${name}_logits.npy`)), name);
      assert.equal(float, 217 / 240, name);
      const uni = await w8a4(name, { "gnn-ranges": "uniform" });
      const deg = await w8a4(name);
      const a = {
        name,
        uniform: acc(await simulate(uni.quantized).run(inputs)),
        degree: acc(await simulate(deg.quantized).run(inputs)),
      };
      assert.ok(a.degree >= a.uniform + 0.03, JSON.stringify(a));
      assert.ok(a.degree >= float - 0.03, JSON.stringify({ ...a, float }));
    }
  },
});

Deno.test({
  name: "GCN (dense) at w8a4 with protected hubs: within 3 points of float",
  sanitizeResources: false,
  async fn() {
    // (uniform ranges already lose < 3 points on the normalised GCN: no +3 to win there)
    const { quantized, inputs } = await w8a4("gcn_dense", { "gnn-protect": 0.05 });
    // the first aggregation's output, its self-loop term split off (self_loops.ts)
    const e = quantized.plan.entries.find((p) =>
      p.value === "/MatMul_output_0" + SELF_LOOP_SUFFIX.neighbours
    )!;
    assert.equal(e.quantizer, "gnn-degree");
    // 8 bins and the protected set, one range per feature column in each
    const columns = e.extra!.columns[0];
    assert.equal(columns, 32); // Â(XW + b): the 32 hidden features
    assert.equal(e.scale!.length, 9 * columns);
    assert.ok(acc(await simulate(quantized).run(inputs)) >= 218 / 240 - 0.03);
  },
});

Deno.test({
  name: "lowbit run of the .lowbit reproduces the simulation exactly on the full graph",
  sanitizeResources: false,
  async fn() {
    const { quantized, inputs, registry: r } = await w8a4("gin_edges", { "gnn-protect": 0.05 });
    const sim = (await simulate(quantized).run(inputs)).data as Float32Array;
    const bytes = encodeLowbitModel(quantized);
    // in process: the lowbit file's FakeQuant nodes call the plugin's quantizer
    const loaded = lowbitModel(decodeLowbitFile(bytes), { registry: r });
    assert.equal(loaded.graph.nodes.filter((n) => n.op === "FakeQuant").length, 9);
    const out = await createExecutor(loaded, { registry: r }).run(inputs);
    assert.deepEqual(out.logits.data, sim);
    // the CLI, loading the plugin by its short name
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/m.lowbit`, bytes);
      const cmd = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}apps/cli/main.ts`, "run", `${dir}/m.lowbit`, "--plugin", "gnn"]
          .concat(["--input", `x=${ROOT}fixtures/gnn/x.npy`])
          .concat(["--input", `edge_index=${ROOT}fixtures/gnn/edge_index.npy`])
          .concat(["--out", `${dir}/y.npy`]),
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      });
      const res = await cmd.output();
      assert.equal(res.code, 0, new TextDecoder().decode(res.stderr));
      const y = readNpy(await Deno.readFile(`${dir}/y.npy`));
      assert.deepEqual(y.data, sim);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "mixed search: the update-MLP layers of each GIN layer share a weight format",
  sanitizeResources: false,
  async fn() {
    const inputs = await graphInputs("gin_dense");
    // mlp1.0 may only be int8: tied to it, mlp1.2 must follow though the budget presses
    const r = registry();
    r.searchGroups.register({
      name: "pin",
      groups: () => ({ candidates: { "/mlp1/mlp1.0/Gemm": ["int8/channel"] } }),
    });
    let allocation: Record<string, string> = {};
    await quantize({
      model: await model("gin_dense"),
      calib: { inputs: { ...inputs }, count: 400 },
      preset: "mixed",
      registry: r,
      pluginOptions: { "gnn-agg-format": "int4" },
      mixedSearch: graphMixedSearch(inputs, (a) => (allocation = a)),
      mixedOptions: {
        budget: "7bits", // stored bits per weight, scales included
        metric: "layer-hessian",
        candidates: "int8/channel,int4/channel,int2/channel",
      },
    });
    assert.equal(Object.keys(allocation).length, 5);
    assert.equal(allocation["/mlp1/mlp1.0/Gemm"], "int8/channel");
    assert.equal(allocation["/mlp1/mlp1.2/Gemm"], "int8/channel");
    assert.equal(allocation["/mlp2/mlp2.0/Gemm"], allocation["/mlp2/mlp2.2/Gemm"]);
    assert.ok(Object.values(allocation).some((c) => c !== "int8/channel"), "the budget presses");
  },
});

async function failure(p: Promise<unknown>): Promise<LowbitError> {
  const e = await p.then(() => undefined, (e) => e);
  assert.ok(e instanceof LowbitError, `expected a LowbitError, got ${e}`);
  return e;
}

Deno.test("bad graphs: a non-square adjacency, an edge index out of range", async () => {
  const x = await npy("x.npy");
  const adj = await npy("adj.npy");
  const rect = { ...adj, shape: [400, 399], data: (adj.data as Float32Array).slice(0, 400 * 399) };
  const e1 = await failure(quantize({
    model: await model("gin_dense"),
    calib: { inputs: { x, adj: rect }, count: 400 },
    preset: "w8a4",
    registry: registry(),
  }));
  assert.equal(e1.subject.tensor, "adj");
  assert.match(e1.message, /the adjacency must be square \(nodes × nodes\), it is \[400, 399\]/);
  const ei = await npy("edge_index.npy");
  const bad = { ...ei, data: (ei.data as BigInt64Array).slice() };
  (bad.data as BigInt64Array)[3984 + 7] = 400n;
  const e2 = await failure(quantize({
    model: await model("gin_edges"),
    calib: { inputs: { x, edge_index: bad }, count: 400 },
    preset: "w8a4",
    registry: registry(),
  }));
  assert.equal(e2.subject.tensor, "edge_index");
  assert.match(e2.message, /edge 7 has destination 400, outside the graph's 400 nodes/);
  // the quantized model checks the graph it is given at run time too
  const { quantized } = await w8a4("gin_edges");
  const e3 = await failure(simulate(quantized).run({ x, edge_index: bad }));
  assert.match(e3.message, /outside the graph's 400 nodes/);
});

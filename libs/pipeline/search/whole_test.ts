// searchMixedPrecision() / createMixedSearch() with whole inputs (Dataset.whole): one sample that
// is never cut to `samples`, integer inputs kept integer for the executor. The model is the digits
// MLP behind a Gather of an int64 index (a graph-style input).
import assert from "node:assert/strict";
import { type Graph, type Model, readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { type MixedPrecisionOptions, searchMixedPrecision } from "./search.ts";
import { createMixedSearch } from "./hook.ts";
import { quantize } from "../quantize.ts";

const ROOT = new URL("../../../fixtures/digits/", import.meta.url);
const mlp = await readOnnxFile(new URL("mlp.onnx", ROOT).pathname);
const table = readNpy(await Deno.readFile(new URL("calib_x.npy", ROOT)));
const N = table.shape[0]; // 200
// idx[i] = (7 i + 3) mod N: a permutation, so every row of the table is read once
const idx: TensorData = {
  dtype: "int64",
  shape: [N],
  data: BigInt64Array.from({ length: N }, (_, i) => BigInt((7 * i + 3) % N)),
};
const x0 = mlp.graph.inputs[0].name;
const graph: Graph = {
  ...mlp.graph,
  inputs: [{ name: "table", dtype: "float32" }, { name: "idx", dtype: "int64" }],
  nodes: [
    {
      name: "gather",
      op: "Gather",
      domain: "",
      inputs: ["table", "idx"],
      outputs: [x0],
      attrs: {},
    },
    ...mlp.graph.nodes,
  ],
};
const model: Model = { ...mlp, graph };
const base: Omit<MixedPrecisionOptions, "calib"> = {
  model,
  candidates: ["int8/channel", "int4/channel", "int2/channel"],
  metric: "layer-hessian",
  strategy: "ilp",
  budgets: [{ kind: "bits", bits: 5 }],
  measureFrontier: 3,
};
const summary = (r: Awaited<ReturnType<typeof searchMixedPrecision>>) => ({
  allocation: r.allocation,
  scores: r.perLayer.map((l) => l.scores),
  measured: r.frontier.points.map((p) => p.measured),
});

Deno.test("searchMixedPrecision(): whole inputs are one sample, never cut to `samples`", async () => {
  // Whole, with the default 64 / 200 samples vs the same tensors as samples, every row asked for.
  const whole = await searchMixedPrecision({ ...base, calib: {}, whole: { table, idx } });
  const all = await searchMixedPrecision({
    ...base,
    calib: { table, idx },
    samples: N,
    measureSamples: N,
  });
  assert.deepEqual(summary(whole), summary(all));
  assert.ok(whole.frontier.points.some((p) => p.measured !== undefined));
  // The same tensors cut to the default 64 rows score differently: the whole graph was used.
  const cut = await searchMixedPrecision({ ...base, calib: { table: table, idx } }).catch((e) => e);
  assert.ok(
    cut instanceof Error ||
      JSON.stringify(summary(cut).scores) !== JSON.stringify(summary(all).scores),
  );
});

Deno.test("searchMixedPrecision(): with activation formats, an int64 whole input reaches the executor as int64", async () => {
  // "none" activations: the executor path (float32, int64 index as given) must measure what the
  // float64 weight-only path measures on the same allocations.
  const weightsOnly = await searchMixedPrecision({ ...base, calib: {}, whole: { table, idx } });
  const withActs = await searchMixedPrecision({
    ...base,
    calib: {},
    whole: { table, idx },
    activationFormats: ["none"],
  });
  assert.deepEqual(
    withActs.frontier.points.map((p) => p.measured),
    weightsOnly.frontier.points.map((p) => p.measured),
  );
  assert.ok(Object.values(withActs.allocation).every((c) => c.endsWith("@none")));
});

Deno.test("createMixedSearch() passes the dataset's whole inputs (--whole from the CLI)", async () => {
  let got: Record<string, string> | undefined;
  const calib = { inputs: {}, count: 1, whole: { table, idx } };
  await quantize({
    model,
    calib,
    preset: "mixed",
    mixedSearch: createMixedSearch({ model, calib, onResult: (r) => (got = r.allocation) }),
    mixedOptions: { budget: "5bits", metric: "layer-hessian", candidates: base.candidates!.join() },
  });
  const direct = await searchMixedPrecision({ ...base, calib: {}, whole: { table, idx } });
  assert.deepEqual(got, direct.allocation);
});

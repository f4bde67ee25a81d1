// Balanced routing in the calibration graph: every expert receives its routed tokens plus the
// ceil(frac·B) tokens of highest gate probability for it (computed here from the Softmax output),
// gated by that probability, while the model's output stays bit for bit the float one.
import assert from "node:assert/strict";
import { createExecutor, readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { balancedGraph, calibrationBatches, detectMoE, extraSamples } from "./mod.ts";

const DIR = new URL("../../fixtures/moe/", import.meta.url);
const x = readNpy(Deno.readFileSync(new URL("calib_x.npy", DIR)));

Deno.test("balancedGraph gives each expert its routed plus its highest-affinity tokens, output unchanged", async () => {
  const model = await readOnnxFile(new URL("moe_sparse.onnx", DIR).pathname);
  const info = detectMoE(model.graph);
  const r = info.routers[0];
  const frac = 0.3;
  let probs: TensorData | undefined;
  const float = await createExecutor(model).run({ x }, {
    watch: ["/Softmax_output_0"],
    observe: (_n, t) => void (probs = t),
  });
  const p = probs!.data as Float32Array, B = x.shape[0], E = 4;
  const got = new Map<string, TensorData>();
  const graph = (name: string) => model.graph.nodes.find((n) => n.name === name)!;
  const watch = r.experts.flatMap((e) => [e.gate!, graph(e.dispatch!).inputs[1]]);
  const bal = await createExecutor({ ...model, graph: balancedGraph(model.graph, info, frac) }).run(
    { x },
    { watch, observe: (n, t) => void got.set(n, t) },
  );
  assert.deepEqual(bal.logits.data, float.logits.data);
  const k = Math.ceil(frac * B);
  for (const e of r.experts) {
    const col = Array.from({ length: B }, (_, t) => p[t * E + e.index]);
    const argmax = (t: number) =>
      col.indexOf(col[t]) >= 0 &&
      [0, 1, 2, 3].reduce((b, j) => (p[t * E + j] > p[t * E + b] ? j : b), 0);
    const kth = [...col].sort((a, b) => b - a)[k - 1];
    const expected = col.map((_v, t) => t).filter((t) => argmax(t) === e.index || col[t] >= kth);
    const ids = Array.from(got.get(graph(e.dispatch!).inputs[1])!.data as BigInt64Array, Number);
    assert.deepEqual(ids, expected, `expert ${e.index}`);
    assert.ok(ids.length >= k);
    const gates = got.get(e.gate!)!.data as Float32Array;
    assert.deepEqual([...gates], ids.map((t) => col[t]));
  }
});

Deno.test("extraSamples mixes two samples per new one, deterministically; batches append them", () => {
  const a = extraSamples({ x }, x.shape[0], 20), b = extraSamples({ x }, x.shape[0], 20);
  assert.deepEqual(a.x.shape, [20, 1, 8, 8]);
  assert.deepEqual(a.x.data, b.x.data);
  // a convex mix of images in [0, 1] stays in [0, 1] and is none of the originals
  const d = a.x.data as Float32Array, src = x.data as Float32Array;
  assert.ok(d.every((v) => v >= 0 && v <= 1));
  for (let i = 0; i < 20; i++) {
    const s = d.subarray(i * 64, (i + 1) * 64);
    for (let j = 0; j < x.shape[0]; j++) {
      assert.ok(s.some((v, q) => v !== src[j * 64 + q]));
    }
  }
  const batches = calibrationBatches({ x }, x.shape[0], 50, 20);
  assert.deepEqual(batches.map((t) => t.x.shape[0]), [50, 50, 18, 20]);
  assert.deepEqual(batches[3].x.data, a.x.data);
});

Deno.test("balancedGraph leaves an expert whose combine it cannot verify as it is, with a note", async () => {
  const model = await readOnnxFile(new URL("moe_sparse.onnx", DIR).pathname);
  // expert 1's rows reach the output through an op that is not a scatter
  const graph = {
    ...model.graph,
    nodes: model.graph.nodes.map((n) => (n.name === "/ScatterND_1" ? { ...n, op: "Custom" } : n)),
  };
  const notes: string[] = [];
  const g = balancedGraph(graph, detectMoE(model.graph), 0.5, notes);
  assert.deepEqual(notes.length, 1);
  assert.match(notes[0], /expert 1 of router '\/router\/Gemm' is not re-routed/);
  assert.ok(g.nodes.some((n) => n.name === "moe_bal/0/0/or"));
  assert.ok(!g.nodes.some((n) => n.name === "moe_bal/0/1/or"));
  assert.equal(g.nodes.find((n) => n.name === "/ScatterND_1")!.attrs.reduction, undefined);
});

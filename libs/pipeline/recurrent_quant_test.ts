// Recurrent weights through the pipeline: an LSTM's W and R quantized per gate and unit (one
// scale per row of axis 1, both directions sharing it), checked against scales and codes computed
// here by hand; the same weights inside an If branch, computed there from a top-level initializer
// (as PyTorch's LSTMCell export does), folded, quantized and stored as codes in the lowbit file;
// and the QDQ ONNX of it run by onnxruntime-web like our executor.
import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import {
  createExecutor,
  decodeLowbitFile,
  findInitializer,
  ifNodeOf,
  lowbitModel,
  type Model,
  modelOf,
  readOnnx,
  readSafetensors,
  type TensorData,
  walkGraphs,
} from "@lowbit/graph";
import { encodeQuantized } from "./export.ts";
import { encodeLowbitModel } from "./lowbit_model.ts";
import { quantize } from "./quantize.ts";
import { runnableModel } from "./simulate.ts";

const HIDDEN = 4, INPUT = 3, SEQ = 5, BATCH = 6;

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const f32 = (shape: number[], data: Float32Array): TensorData => ({
  dtype: "float32",
  shape,
  data,
});

/** X [seq, batch, input] → bidirectional LSTM → Y [seq, 2, batch, hidden]. */
function lstmModel(): Model {
  const dirs = 2, rows = 4 * HIDDEN;
  const W = values(dirs * rows * INPUT, 1), R = values(dirs * rows * HIDDEN, 2);
  // One gate row of W much larger than the others: per-tensor scales would flatten the rest.
  for (let k = 0; k < INPUT; k++) W[5 * INPUT + k] *= 40;
  return modelOf({
    inputs: [{ name: "x", dtype: "float32", shape: [SEQ, "batch", INPUT] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: [
      ["W", f32([dirs, rows, INPUT], W)],
      ["R", f32([dirs, rows, HIDDEN], R)],
    ],
    nodes: [{
      name: "rnn",
      op: "LSTM",
      domain: "",
      inputs: ["x", "W", "R"],
      outputs: ["y"],
      attrs: {
        hidden_size: { kind: "int", value: HIDDEN },
        direction: { kind: "string", value: "bidirectional" },
      },
    }],
  }, { opset: 14, producerName: "test" });
}

const calib = () => ({
  inputs: { x: f32([SEQ, BATCH, INPUT], values(SEQ * BATCH * INPUT, 3)) },
  axes: { x: 1 },
  count: BATCH,
});

Deno.test("an LSTM's W and R are quantized int8 per gate and unit, on hand-computed grids", async () => {
  const model = lstmModel();
  const { quantized } = await quantize({ model, calib: calib(), preset: "w8a8" });
  const weights = quantized.plan.entries.filter((e) => e.role === "weight");
  assert.deepEqual(weights.map((e) => e.value), ["W", "R"]);
  const acts = quantized.plan.entries.filter((e) => e.role === "activation" && !e.skip);
  assert.deepEqual(acts.map((e) => e.value), ["x"]); // one input point for the node
  for (const e of weights) {
    const w = model.graph.initializers.get(e.value)!;
    const [dirs, rows, width] = w.shape;
    assert.deepEqual(e.granularity, { kind: "channel", axis: 1 });
    const q = quantized.model.graph.initializers.get(e.value)!.data as Float32Array;
    for (let r = 0; r < rows; r++) {
      // Symmetric int8: scale = max |row| over both directions / 127.
      let max = 0;
      for (let d = 0; d < dirs; d++) {
        for (let k = 0; k < width; k++) {
          max = Math.max(max, Math.abs(w.data[(d * rows + r) * width + k] as number));
        }
      }
      // The library's symmetric int8: scale = max / 127.5, codes clamped to [-128, 127].
      const s = max / 127.5;
      assert.ok(Math.abs(e.scale![r] - s) <= 1e-7 * s, `${e.value} row ${r} scale`);
      for (let d = 0; d < dirs; d++) {
        for (let k = 0; k < width; k++) {
          const i = (d * rows + r) * width + k;
          // Round to nearest: a grid point k·scale, k in [-128, 127], within half a step.
          const code = q[i] / e.scale![r];
          assert.ok(
            Math.abs(code - Math.round(code)) < 1e-3 && Math.abs(Math.round(code) + 0.5) <= 128,
            `${e.value}[${i}]: code ${code}`,
          );
          const err = Math.abs((w.data[i] as number) - q[i]);
          assert.ok(err <= e.scale![r] * (0.5 + 1e-4), `${e.value}[${i}] off by ${err}`);
        }
      }
    }
  }
  // Per-row scales keep the small rows: with weights alone quantized, the output error is far
  // below what one scale per tensor gives.
  const x = calib().inputs.x;
  const yf = (await createExecutor(model).run({ x })).y.data as Float32Array;
  const errOf = async (granularity: "channel" | "tensor"): Promise<number> => {
    const rules = [{ match: "*", activation: null, weight: { granularity } }];
    const { quantized: qm } = await quantize({ model, calib: calib(), preset: "w8a8", rules });
    const y = (await createExecutor(runnableModel(qm)).run({ x })).y.data as Float32Array;
    return Math.max(...yf.map((v, i) => Math.abs(v - y[i])));
  };
  const [perRow, perTensor] = [await errOf("channel"), await errOf("tensor")];
  assert.ok(perRow > 0 && perRow < perTensor / 4, `per row ${perRow}, per tensor ${perTensor}`);
  const yq = (await createExecutor(runnableModel(quantized)).run({ x })).y.data as Float32Array;
  // Its plan replays (two weight entries on one node) to the same weights.
  const replay = await quantize({ model, plan: JSON.parse(JSON.stringify(quantized.plan)) });
  for (const v of ["W", "R"]) {
    assert.deepEqual(
      replay.quantized.model.graph.initializers.get(v)!.data,
      quantized.model.graph.initializers.get(v)!.data,
    );
  }
  // Its lowbit file runs to the same bits; its QDQ ONNX runs in onnxruntime-web like ours.
  const file = lowbitModel(decodeLowbitFile(encodeLowbitModel(quantized)));
  assert.deepEqual((await createExecutor(file).run({ x })).y.data, yq);
  const onnx = encodeQuantized(quantized, "m.onnx");
  const ours = (await createExecutor(readOnnx(onnx)).run({ x })).y.data as Float32Array;
  const s = await ort.InferenceSession.create(onnx);
  const theirs = (await s.run({ x: new ort.Tensor("float32", x.data as Float32Array, x.shape) }))
    .y.data as Float32Array;
  assert.ok(ours.every((v, i) => Math.abs(v - theirs[i]) < 1e-5), "onnxruntime-web agrees");
});

Deno.test("LSTM weights computed inside an If branch are folded, quantized and stored as codes", async () => {
  const flat = lstmModel();
  const W = flat.graph.initializers.get("W")!, R = flat.graph.initializers.get("R")!;
  // The branch reads "W_t" [2, input, rows] from the top level and transposes it into W.
  const wt = new Float32Array(W.data.length);
  const [dirs, rows] = W.shape;
  for (let d = 0; d < dirs; d++) {
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < INPUT; k++) {
        wt[(d * INPUT + k) * rows + r] = W.data[(d * rows + r) * INPUT + k] as number;
      }
    }
  }
  const branch = (tag: string) => ({
    name: tag,
    inputs: [],
    outputs: [{ name: `y_${tag}`, dtype: "float32" as const }],
    valueInfo: new Map(),
    initializers: new Map([[`R_${tag}`, R]]),
    nodes: [
      {
        name: `t_${tag}`,
        op: "Transpose",
        domain: "",
        inputs: ["W_t"],
        outputs: [`W_${tag}`],
        attrs: { perm: { kind: "ints" as const, value: [0, 2, 1] } },
      },
      { ...flat.graph.nodes[0], name: `rnn_${tag}`, inputs: ["x", `W_${tag}`, `R_${tag}`] },
    ].map((n) => ({ ...n, outputs: n.op === "LSTM" ? [`y_${tag}`] : n.outputs })),
  });
  const model: Model = {
    ...flat,
    graph: {
      ...flat.graph,
      inputs: [...flat.graph.inputs, { name: "c", dtype: "bool", shape: [] }],
      initializers: new Map([["W_t", f32([dirs, INPUT, rows], wt)]]),
      nodes: [ifNodeOf("if", "c", ["y"], branch("a"), branch("b"))],
    },
  };
  const c: TensorData = { dtype: "bool", shape: [], data: Uint8Array.of(1) };
  const { quantized } = await quantize({
    model,
    calib: { ...calib(), whole: { c } },
    preset: "w8a8",
  });
  const weights = quantized.plan.entries.filter((e) => e.role === "weight" && !e.skip);
  assert.deepEqual(weights.map((e) => e.value).sort(), ["R_a", "R_b", "W_a", "W_b"]);
  // The top-level float copy is gone; the folded W sits in its branch, on the grid of the flat
  // model's W (the same values, transposed back).
  assert.ok(!quantized.model.graph.initializers.has("W_t"));
  const { quantized: flatQ } = await quantize({ model: flat, calib: calib(), preset: "w8a8" });
  const inBranch = findInitializer(quantized.model.graph, "W_a")!;
  assert.notEqual(inBranch.graph, quantized.model.graph);
  assert.deepEqual(inBranch.tensor.data, flatQ.model.graph.initializers.get("W")!.data);
  // The file holds codes, not float copies: no float32 initializer left in the bodies, and the
  // file is smaller than the float weights alone.
  const bytes = encodeLowbitModel(quantized);
  const graphBytes = readSafetensors(bytes).tensors.get("lowbit.graph")!.data as Uint8Array;
  const stored = readOnnx(graphBytes);
  for (const v of walkGraphs(stored.graph)) {
    assert.equal(v.graph.initializers.size, 0, v.path.join());
  }
  const floatBytes = 4 * (W.data.length + R.data.length);
  assert.ok(bytes.length > 0 && graphBytes.length < floatBytes, `${graphBytes.length} B graph`);
  // Loaded back, the branch runs to the same bits as the quantized model.
  const x = calib().inputs.x;
  const want = (await createExecutor(runnableModel(quantized)).run({ x, c })).y.data;
  const got = (await createExecutor(lowbitModel(decodeLowbitFile(bytes))).run({ x, c })).y.data;
  assert.deepEqual(got, want);
  assert.deepEqual(want, (await createExecutor(runnableModel(flatQ)).run({ x })).y.data);
});

Deno.test("GRU and RNN weights are quantized per gate and unit too (3·hidden and hidden rows)", async () => {
  for (const [op, gates] of [["GRU", 3], ["RNN", 1]] as const) {
    const m = lstmModel();
    const rows = gates * HIDDEN;
    m.graph.nodes[0] = { ...m.graph.nodes[0], op };
    m.graph.initializers.set("W", f32([2, rows, INPUT], values(2 * rows * INPUT, 4)));
    m.graph.initializers.set("R", f32([2, rows, HIDDEN], values(2 * rows * HIDDEN, 5)));
    const { quantized } = await quantize({ model: m, calib: calib(), preset: "w8a8" });
    const weights = quantized.plan.entries.filter((e) => e.role === "weight" && !e.skip);
    assert.deepEqual(weights.map((e) => [e.value, e.scale?.length]), [["W", rows], ["R", rows]]);
    const x = calib().inputs.x;
    const yf = (await createExecutor(m).run({ x })).y.data as Float32Array;
    const yq = (await createExecutor(runnableModel(quantized)).run({ x })).y.data as Float32Array;
    const err = Math.max(...yf.map((v, i) => Math.abs(v - yq[i])));
    assert.ok(err > 0 && err < 0.05, `${op}: max |Δy| ${err}`);
    const file = lowbitModel(decodeLowbitFile(encodeLowbitModel(quantized)));
    assert.deepEqual((await createExecutor(file).run({ x })).y.data, yq, op);
  }
});

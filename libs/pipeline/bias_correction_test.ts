import assert from "node:assert/strict";
import { digitsCalib, digitsModel } from "./_testdata.ts";
import { calibrate } from "./calibrate.ts";
import { addBias, biasShift } from "./bias_correction.ts";
import { scanLayers, toOutIn } from "./layers.ts";
import { cloneModel, quantize } from "./quantize.ts";
import { activationTransform } from "./simulate.ts";
import { silentProgress } from "./progress_api.ts";
import { createExecutor, modelOf } from "@lowbit/graph";

Deno.test("biasShift() + addBias() remove the mean output error of a rounded layer", async () => {
  const mlp = await digitsModel("mlp");
  const calib = await digitsCalib();
  const { layers } = scanLayers(mlp.graph);
  const l = layers[0];
  const stats = await calibrate(mlp, calib, { means: [l] });
  const w = mlp.graph.initializers.get(l.weight)!.data as Float32Array;
  const q = w.map((v) => Math.round(v * 4) / 4); // a crude grid with a visible bias
  const rounded = cloneModel(mlp);
  rounded.graph.initializers.set(l.weight, { ...mlp.graph.initializers.get(l.weight)!, data: q });
  const corrected = cloneModel(rounded);
  assert.ok(
    addBias(corrected, l, biasShift(l, toOutIn(l, w), toOutIn(l, q), stats.means.get(l.node)!)),
  );
  const out = mlp.graph.nodes.find((n) => n.name === l.node)!.outputs[0];
  const mean = async (m: typeof mlp) => {
    const y = (await createExecutor(m).run(calib.inputs, { outputs: [out] }))[out];
    const d = y.data as Float32Array, o = y.shape[1];
    const acc = new Float64Array(o);
    for (let i = 0; i < d.length; i++) acc[i % o] += d[i] / (d.length / o);
    return acc;
  };
  const ref = await mean(mlp), before = await mean(rounded), after = await mean(corrected);
  const err = (a: Float64Array) => a.reduce((s, v, i) => s + Math.abs(v - ref[i]), 0);
  assert.ok(err(after) < err(before) / 100, `mean error ${err(before)} → ${err(after)}`);
});

Deno.test("biasShift() with the quantized input's mean removes the mean error of a rounded input too", async () => {
  const mlp = await digitsModel("mlp");
  const calib = await digitsCalib();
  const { layers } = scanLayers(mlp.graph);
  const l = layers[0];
  // A coarse input grid: the rounding error has a mean of its own per input feature.
  const grid = (d: Float32Array) => d.map((v) => Math.round(v * 2) / 2);
  const stats = await calibrate(mlp, calib, { means: [l] });
  const quantized = await calibrate(mlp, calib, {
    means: [l],
    layerInput: (_l, t) => ({ ...t, data: grid(t.data as Float32Array) }),
  });
  const m = stats.means.get(l.node)!, mq = quantized.means.get(l.node)!;
  // The hook changed what the layer sees (independently: the mean of the rounded rows differs).
  assert.ok(m.some((v, j) => Math.abs(v - mq[j]) > 1e-3));
  const w = mlp.graph.initializers.get(l.weight)!.data as Float32Array;
  const q = w.map((v) => Math.round(v * 4) / 4);
  const rounded = cloneModel(mlp);
  rounded.graph.initializers.set(l.weight, { ...mlp.graph.initializers.get(l.weight)!, data: q });
  const weightsOnly = cloneModel(rounded), both = cloneModel(rounded);
  assert.ok(addBias(weightsOnly, l, biasShift(l, toOutIn(l, w), toOutIn(l, q), m)));
  assert.ok(addBias(both, l, biasShift(l, toOutIn(l, w), toOutIn(l, q), m, mq)));
  // Without a quantized mean the shift is the weights' alone: (W − Q)·m.
  const s1 = biasShift(l, toOutIn(l, w), toOutIn(l, q), m);
  const wv = toOutIn(l, w), qv = toOutIn(l, q);
  let d0 = 0;
  for (let j = 0; j < l.in; j++) d0 += (wv[j] - qv[j]) * m[j];
  assert.ok(Math.abs(s1[0] - d0) < 1e-9);
  const out = mlp.graph.nodes.find((n) => n.name === l.node)!.outputs[0];
  const mean = async (model: typeof mlp, roundInput: boolean) => {
    const y = (await createExecutor(model).run(calib.inputs, {
      outputs: [out],
      ...(roundInput
        ? {
          transform: (name: string, t: { data: unknown }) =>
            name === l.input ? { ...t, data: grid(t.data as Float32Array) } as never : undefined,
        }
        : {}),
    }))[out];
    const d = y.data as Float32Array, o = y.shape[1];
    const acc = new Float64Array(o);
    for (let i = 0; i < d.length; i++) acc[i % o] += d[i] / (d.length / o);
    return acc;
  };
  const ref = await mean(mlp, false);
  const err = (a: Float64Array) => a.reduce((s, v, i) => s + Math.abs(v - ref[i]), 0);
  const before = err(await mean(weightsOnly, true)), after = err(await mean(both, true));
  assert.ok(after < before / 100, `mean error with the input rounded ${before} → ${after}`);
});

Deno.test("quantize() with bias correction cancels the mean error of a flat input's rounding", async () => {
  // y = x·[6, −3]: x is a flat 0.3 (a text line's background) with one 10 that sets the range.
  const model = modelOf({
    name: "flat",
    nodes: [{ name: "fc", op: "Gemm", domain: "", inputs: ["x", "W"], outputs: ["y"], attrs: {} }],
    inputs: [{ name: "x", dtype: "float32", shape: ["N", 1] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: { W: { dtype: "float32", shape: [1, 2], data: new Float32Array([6, -3]) } },
  });
  const x = new Float32Array(64).fill(0.3);
  x[0] = 10;
  const calib = {
    inputs: { x: { dtype: "float32" as const, shape: [64, 1], data: x } },
    count: 64,
  };
  const meanOut = async (r: Awaited<ReturnType<typeof quantize>>) => {
    const qm = r.quantized;
    const y = (await createExecutor(qm.model).run(calib.inputs, {
      transform: activationTransform(qm, calib.inputs),
    })).y.data as Float32Array;
    return [0, 1].map((o) => y.filter((_, i) => i % 2 === o).reduce((s, v) => s + v, 0) / 64);
  };
  const float = [0, 1].map((o) => (63 * 0.3 + 10) / 64 * [6, -3][o]);
  const first = await quantize({ model, calib, progress: silentProgress() });
  const plain = await meanOut(first);
  const corrected = await meanOut(
    await quantize({ model, calib, biasCorrection: true, progress: silentProgress() }),
  );
  // Independently: the input's fitted int8 grid puts 0.3 on s·(round(0.3/s + z) − z) and 10 on
  // itself; uncorrected, channel o's mean is q_o·mean(x̂) with q_o its on-grid weight.
  const act = first.quantized.plan.entries.find((e) => e.role === "activation")!;
  const s = act.scale![0], z = act.zeroPoint![0];
  const bg = s * (Math.round(0.3 / s + z) - z);
  assert.ok(Math.abs(bg - 0.3) > 1e-3, `0.3 is on the grid (${s}, ${z}): nothing to correct`);
  const q = first.quantized.model.graph.initializers.get("W")!.data as Float32Array;
  for (const o of [0, 1]) {
    const expected = q[o] * (63 * bg + s * (Math.round(10 / s + z) - z)) / 64;
    assert.ok(Math.abs(plain[o] - expected) < 1e-4, `channel ${o}: ${plain[o]} vs ${expected}`);
    assert.ok(Math.abs(plain[o] - float[o]) > 0.02, `channel ${o}: no error to correct`);
  }
  for (const o of [0, 1]) {
    assert.ok(
      Math.abs(corrected[o] - float[o]) < 1e-4,
      `channel ${o}: ${corrected[o]} vs ${float[o]}`,
    );
  }
  // "weights": only the weights' rounding, (w − q)·E[x] over the float input, is added back.
  const weightsOnly = await meanOut(
    await quantize({ model, calib, biasCorrection: "weights", progress: silentProgress() }),
  );
  const meanX = (63 * 0.3 + 10) / 64;
  for (const o of [0, 1]) {
    const expected = plain[o] + ([6, -3][o] - q[o]) * meanX;
    assert.ok(
      Math.abs(weightsOnly[o] - expected) < 1e-4,
      `weights only, channel ${o}: ${weightsOnly[o]} vs ${expected}`,
    );
  }
  assert.ok(weightsOnly.some((v, o) => Math.abs(v - float[o]) > 0.02), "the input's part is left");
});

import assert from "node:assert/strict";
import { digitsCalib, digitsModel } from "./_testdata.ts";
import { calibrate } from "./calibrate.ts";
import { addBias, biasShift } from "./bias_correction.ts";
import { scanLayers, toOutIn } from "./layers.ts";
import { cloneModel } from "./quantize.ts";
import { createExecutor } from "@lowbit/graph";

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

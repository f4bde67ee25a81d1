import assert from "node:assert/strict";
import { createExecutor } from "@lowbit/graph";
import { digitsCalib, digitsModel } from "./_testdata.ts";
import { calibrate } from "./calibrate.ts";
import { scanLayers } from "./layers.ts";
import { sqnrDb } from "./metrics.ts";
import { cloneModel } from "./quantize.ts";
import { smoothQuant } from "./smoothquant.ts";

Deno.test("smoothQuant() leaves the ViT's float function unchanged and flattens input outliers", async () => {
  const vit = await digitsModel("vit");
  const calib = await digitsCalib();
  const { layers } = scanLayers(vit.graph);
  const { absMax } = await calibrate(vit, calib, { absMax: layers });
  const smoothed = cloneModel(vit);
  const r = smoothQuant(smoothed, layers, absMax, 0.5);
  // q/k/v share one LayerNorm output, fc1 has its own: both blocks' LNs absorb the factors.
  assert.ok(Object.keys(r.factors).length >= 8, JSON.stringify(Object.keys(r.factors)));
  assert.ok(
    r.notes.some((n) => /cannot absorb|graph input|feeds other/.test(n)),
    r.notes.join("\n"),
  );
  const x = calib.inputs;
  const a = (await createExecutor(vit).run(x)).logits.data as Float32Array;
  const b = (await createExecutor(smoothed).run(x)).logits.data as Float32Array;
  assert.ok(sqnrDb(a, b) > 80, `float outputs moved: ${sqnrDb(a, b)} dB`);
  const after = (await calibrate(smoothed, calib, { absMax: layers })).absMax;
  const spread = (m: Float32Array) => Math.max(...m) / Math.max(1e-9, Math.min(...m));
  const value = layers.find((l) => r.factors[l.node])!.input;
  assert.ok(spread(after.get(value)!) < spread(absMax.get(value)!), "outliers not reduced");
});

Deno.test("smoothQuant() rejects alpha outside [0, 1]", async () => {
  const vit = await digitsModel("vit");
  assert.throws(() => smoothQuant(vit, [], new Map(), 1.5), /alpha/);
});

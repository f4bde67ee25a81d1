// The accuracy guard of `lowbit quantize` on a model with degree-aware points: its steps run the
// plugin's quantizer, which reads node degrees from the graph input at run time, so every
// measurement must pass the graph inputs along (the calibrator-per-activation step did not:
// "'gnn-degree' needs the graph input 'edge_index' at run time" on the cancer GAT, whose default
// w8a4 output is 12.8 dB, below the guard's 20 dB).
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { guardQuantize, quantize, type QuantizeOptions } from "@lowbit/pipeline";
import { plugin } from "./mod.ts";
import { FIX } from "./_fixtures.ts";

const npy = async (f: string): Promise<TensorData> =>
  readNpy(await Deno.readFile(`${FIX}unseen/cancer/${f}`), f);

Deno.test({
  name: "the accuracy guard's steps run the degree-aware points with the graph inputs",
  sanitizeResources: false,
  async fn() {
    const registry = createRegistry();
    registerBuiltins(registry);
    registry.use(plugin);
    const inputs = { x: await npy("x.npy"), edge_index: await npy("edge_index.npy") };
    const calib = { inputs, count: 569, whole: inputs };
    const options: QuantizeOptions = {
      model: await readOnnxFile(`${FIX}unseen/cancer/sage_edges.onnx`),
      calib,
      preset: "w8a4",
      registry,
    };
    const steps: string[] = [];
    // 27.1 dB by default: a 40 dB threshold makes the guard try its calibrator steps (each
    // re-quantizes and measures every point alone); no layer kept in float
    const { report } = await guardQuantize(options, await quantize(options), {
      data: calib,
      minSqnrDb: 40,
      maxKept: 0,
      onStep: (m) => steps.push(m),
    });
    assert.ok(steps.some((s) => /calibrator per activation/.test(s)), steps.join("; "));
    assert.equal(report.met, false);
  },
});

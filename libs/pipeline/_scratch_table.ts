import * as ort from "onnxruntime-web";
import { digitsCalib, digitsEval, digitsModel } from "./_testdata.ts";
import {
  encodeQuantized,
  evaluate,
  floatRunner,
  loadModelFile,
  presetNames,
  quantize,
  simulate,
  sqnrDb,
} from "@lowbit/pipeline";
import { createExecutor, readOnnx } from "@lowbit/graph";
const calib = await digitsCalib();
const { data, labels } = await digitsEval();
const x = data.inputs.x;
const pct = (v: number | null) => v === null ? "-" : (v * 100).toFixed(2);
for (const name of ["mlp", "cnn", "vit"]) {
  const model = await digitsModel(name);
  for (const preset of presetNames().filter((p) => p !== "mixed")) {
    for (const rounding of ["rtn", "gptq"] as const) {
      const { quantized } = await quantize({ model, calib, preset, rounding });
      const sim = simulate(quantized);
      const r = await evaluate(floatRunner(model), sim, data, { labels });
      const onnx = quantized.plan.entries.every((e) =>
        e.skip || (!e.dynamic && ["int8", "int4", "fp8_e4m3fn"].includes(e.format!))
      );
      const path = `/tmp/ppo/${name}.${preset}.${rounding}.${onnx ? "onnx" : "lowbit"}`;
      const bytes = encodeQuantized(quantized, path);
      await Deno.writeFile(path, bytes);
      const art = await loadModelFile(path);
      const simOut = (await sim.run({ x })).data as Float32Array;
      const artOut = (await art.runner.run({ x })).data as Float32Array;
      let ortS = "n/a (lowbit)";
      if (onnx) {
        const s = await ort.InferenceSession.create(bytes, {
          graphOptimizationLevel: preset === "fp8" ? "basic" : "all",
        });
        const o = (await s.run({ x: new ort.Tensor("float32", x.data as Float32Array, x.shape) }))
          .logits.data as Float32Array;
        ortS = sqnrDb(artOut, o).toFixed(1);
      }
      console.log(
        [
          name,
          preset,
          rounding,
          pct(r.top1_float),
          pct(r.top1_quant),
          pct(r.top1_agreement),
          r.sqnr_db.toFixed(1),
          sqnrDb(simOut, artOut).toFixed(1),
          ortS,
        ].join(" | "),
      );
    }
  }
}

// How well label-free scores on held-out calibration samples predict top-1: each setting of
// --vit-layernorm / --vit-bias quantizes the model (in-process, no guard), then on calibration
// samples 64+ and on the evaluation set: output MSE, KL(float ‖ quantized) of the softmax of the
// logits, top-1 agreement with the float model, and (evaluation) top-1 against the labels.
//   npx deno run -A plugins/vit/_stage_choice.ts MODEL DATA_DIR [PRESET] [--vit-softmax X]
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { createExecutor, readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { quantize, simulate, sliceBatch } from "@lowbit/pipeline";
import { HELD_OUT_FROM, stageCandidates } from "./auto.ts";
import { plugin } from "./mod.ts";

const [modelPath, dataDir, preset = "w4a4"] = Deno.args.filter((a) => !a.startsWith("--"));
const si = Deno.args.indexOf("--vit-softmax");
const softmax = si >= 0 ? Deno.args[si + 1] : "adalog";
const r = createRegistry();
registerBuiltins(r);
r.use(plugin);
const x = readNpy(await Deno.readFile(`${dataDir}/calib_x.npy`));
const ex = readNpy(await Deno.readFile(`${dataDir}/eval_x.npy`));
const ey = readNpy(await Deno.readFile("fixtures/digits/eval_y.npy")).data as BigInt64Array;
const model = await readOnnxFile(modelPath);
const calib = { inputs: { x }, count: x.shape[0] };
const held = {
  inputs: { x: sliceBatch(calib, HELD_OUT_FROM, calib.count).x },
  count: calib.count - HELD_OUT_FROM,
};
const evalSet = { inputs: { x: ex }, count: ex.shape[0] };

async function outputs(
  run: (b: Record<string, TensorData>) => Promise<TensorData>,
  d: typeof held,
) {
  const parts: Float32Array[] = [];
  for (let s = 0; s < d.count; s += 64) {
    parts.push(
      Float32Array.from(
        (await run(sliceBatch(d, s, Math.min(d.count, s + 64)))).data as Float32Array,
      ),
    );
  }
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), o += p.length;
  return out;
}
const floatExec = createExecutor(model, { registry: r });
const out = model.graph.outputs[0].name;
const floatRun = async (b: Record<string, TensorData>) => (await floatExec.run(b))[out];
const fHeld = await outputs(floatRun, held), fEval = await outputs(floatRun, evalSet);
const K = 10;
const argmax = (y: Float32Array, i: number) => {
  let b = 0;
  for (let j = 1; j < K; j++) if (y[i * K + j] > y[i * K + b]) b = j;
  return b;
};
function scores(f: Float32Array, q: Float32Array, labels?: BigInt64Array) {
  const n = f.length / K;
  let se = 0, kl = 0, agree = 0, hit = 0;
  for (let i = 0; i < n; i++) {
    const lse = (y: Float32Array) => {
      let m = -Infinity;
      for (let j = 0; j < K; j++) m = Math.max(m, y[i * K + j]);
      let s = 0;
      for (let j = 0; j < K; j++) s += Math.exp(y[i * K + j] - m);
      return m + Math.log(s);
    };
    const lf = lse(f), lq = lse(q);
    for (let j = 0; j < K; j++) {
      const d = q[i * K + j] - f[i * K + j];
      se += d * d;
      const pf = Math.exp(f[i * K + j] - lf);
      kl += pf * ((f[i * K + j] - lf) - (q[i * K + j] - lq));
    }
    if (argmax(f, i) === argmax(q, i)) agree++;
    if (labels && BigInt(argmax(q, i)) === labels[i]) hit++;
  }
  return {
    mse: +(se / f.length).toPrecision(4),
    kl: +(kl / n).toPrecision(4),
    agree: +(100 * agree / n).toFixed(2),
    ...(labels ? { top1: +(100 * hit / n).toFixed(2) } : {}),
  };
}
for (const c of stageCandidates("auto", "auto")) {
  const { quantized } = await quantize({
    model,
    calib,
    preset,
    registry: r,
    pluginOptions: { "vit-softmax": softmax, "vit-layernorm": c.layernorm, "vit-bias": c.bias },
  });
  const run = simulate(quantized).run;
  console.log(
    `${c.layernorm} + ${c.bias}`,
    JSON.stringify({
      heldOut: scores(fHeld, await outputs(run, held)),
      eval: scores(fEval, await outputs(run, evalSet), ey),
    }),
  );
}

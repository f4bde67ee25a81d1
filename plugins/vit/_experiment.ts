// Ablation: which group of w4a4 points costs the most top-1 (each group put back in float), and
// the Softmax points alone (every other point in float).
//   npx deno run -A plugins/vit/_experiment.ts MODEL [PRESET] [--vit-softmax X] [--noisy-bias]
//     [--vit-layernorm reparam|tensor|auto] [--vit-bias empirical|off|auto] [--data DIR]   (calib_x.npy / eval_x.npy from DIR, default fixtures/digits/)
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { readNpy, readOnnxFile } from "@lowbit/graph";
import { quantize, simulate } from "@lowbit/pipeline";
import { plugin } from "./mod.ts";

const di = Deno.args.indexOf("--data");
const DATA = di >= 0 ? Deno.args[di + 1].replace(/\/?$/, "/") : "fixtures/digits/";
const li = Deno.args.indexOf("--vit-layernorm");
const bi = Deno.args.indexOf("--vit-bias");
const [modelPath, preset = "w4a4"] = Deno.args.filter((a, i) =>
  !a.startsWith("--") && !["adalog", "log2", "logsqrt2", "twin", "uniform"].includes(a) &&
  (di < 0 || i !== di + 1) && (li < 0 || i !== li + 1) && (bi < 0 || i !== bi + 1)
);
const si = Deno.args.indexOf("--vit-softmax");
const pluginOptions = {
  "vit-softmax": si >= 0 ? Deno.args[si + 1] : "adalog",
  "noisy-bias": Deno.args.includes("--noisy-bias"),
  "vit-layernorm": li >= 0 ? Deno.args[li + 1] : "auto",
  "vit-bias": bi >= 0 ? Deno.args[bi + 1] : "auto",
};
const r = createRegistry();
registerBuiltins(r);
r.use(plugin);
const D = "fixtures/digits/";
const x = readNpy(await Deno.readFile(`${DATA}calib_x.npy`));
const ex = readNpy(await Deno.readFile(`${DATA}eval_x.npy`));
const ey = readNpy(await Deno.readFile(`${D}eval_y.npy`)).data as BigInt64Array;
const model = await readOnnxFile(modelPath);
const { quantized } = await quantize({
  model,
  calib: { inputs: { x }, count: x.shape[0] },
  preset,
  registry: r,
  pluginOptions,
});
async function top1(q: typeof quantized): Promise<number> {
  const y = (await simulate(q).run({ x: ex })).data as Float32Array;
  let hit = 0;
  for (let i = 0; i < ey.length; i++) {
    let b = 0;
    for (let j = 1; j < 10; j++) if (y[i * 10 + j] > y[i * 10 + b]) b = j;
    if (BigInt(b) === ey[i]) hit++;
  }
  return hit / ey.length;
}
console.log("all", await top1(quantized));
// attention operands by role: Q and K of Q·Kᵀ (left / right), V of P·V (beside a Softmax output)
const softmaxOut = new Set(
  model.graph.nodes.filter((n) => n.op === "Softmax").map((n) => n.outputs[0]),
);
const operandRole = (v: string): string => {
  const mm = model.graph.nodes.find((n) => n.op === "MatMul" && n.inputs.includes(v));
  if (!mm) return "?";
  if (mm.inputs.some((i) => softmaxOut.has(i))) return "V";
  return mm.inputs[0] === v ? "Q" : "K";
};
const groups: Record<string, (e: typeof quantized.plan.entries[0]) => boolean> = {
  softmax: (e) => e.by === "vit-softmax",
  attnOperands: (e) => e.by === "vit-attention-matmul",
  attnQ: (e) => e.by === "vit-attention-matmul" && operandRole(e.value) === "Q",
  attnK: (e) => e.by === "vit-attention-matmul" && operandRole(e.value) === "K",
  attnV: (e) => e.by === "vit-attention-matmul" && operandRole(e.value) === "V",
  gelu: (e) => e.by === "vit-gelu",
  layernorm: (e) => e.by === "vit-layernorm" || e.value.includes("ln"),
  layerInputs: (e) => e.role === "activation" && !e.by,
  weights: (e) => e.role === "weight",
};
for (const [g, f] of Object.entries(groups)) {
  const plan = structuredClone(quantized.plan);
  let n = 0;
  for (const e of plan.entries) {
    if (!e.skip && f(e)) {
      e.skip = true;
      n++;
    }
  }
  console.log(g, n, await top1({ ...quantized, plan }));
}
{
  const plan = structuredClone(quantized.plan);
  for (const e of plan.entries) if (e.by !== "vit-softmax") e.skip = true;
  console.log("softmax only", await top1({ ...quantized, plan }));
}
for (const e of quantized.plan.entries) {
  if (e.by) console.log(e.value, e.quantizer, JSON.stringify(e.extra ?? {}), e.scale);
}

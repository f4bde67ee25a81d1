// Attention output error of each Softmax quantizer at 4 bits: ‖(P̂ − P)·V‖ / ‖P·V‖ on the real
// Softmax outputs of the ViT fixtures (first 32 calibration images, every block), and on a
// synthetic ImageNet-sized attention (197 tokens, seeded Gaussian scores of std 3 and values),
// where probabilities crowd near zero. Each quantizer is fitted as the plugin's fit stage does
// (adalog's base, twin's Δ1, uniform's clipping searched on the same error).
//
//   npx deno run -A plugins/vit/attention_bench.ts
import { createRegistry, type QParams, registerBuiltins } from "@lowbit/core";
import { createExecutor, readNpy, readOnnxFile } from "@lowbit/graph";
import { fileURLToPath } from "node:url";
import { type Captured, productSquaredNorm } from "./fit_stage.ts";
import { uniformNoise } from "./noise.ts";
import { plugin } from "./plugin.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const r = createRegistry();
registerBuiltins(r);
r.use(plugin);
const opts = { format: "int4", granularity: { kind: "tensor" as const }, mode: "affine" as const };

function candidates(name: string, lo: number, hi: number): QParams[] {
  const q = r.quantizers.get(name);
  const range = (f: number) => ({ min: Float32Array.of(lo), max: Float32Array.of(hi * f) });
  if (name === "uniform") {
    return [1, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4].map((f) => q.fit(range(f), opts));
  }
  const qp = q.fit(range(1), opts);
  if (name === "adalog") {
    return Array.from({ length: 13 }, (_, i) => ({
      ...qp,
      extra: { ...qp.extra, base: [Math.fround(2 ** (1 / (1 + i / 4)))] },
    }));
  }
  if (name === "twin-uniform") {
    return Array.from({ length: 11 }, (_, m) => ({
      ...qp,
      extra: { ...qp.extra, d1: [Math.fround(qp.scale[0] / 2 ** m)] },
    }));
  }
  return [qp];
}

/** Best relative attention error of one quantizer over its candidates. */
function relError(name: string, p: Captured, v: Captured): number {
  let hi = 0;
  for (const x of p.data) hi = Math.max(hi, x);
  const ref = productSquaredNorm(p, v);
  let best = Infinity;
  for (const qp of candidates(name, 0, hi)) {
    const y = r.quantizers.get(name).fakeQuant(p, qp).data;
    const d = Float32Array.from(y, (yv, i) => yv - p.data[i]);
    best = Math.min(best, productSquaredNorm({ shape: p.shape, data: d }, v));
  }
  return Math.sqrt(best / ref);
}

const NAMES = ["uniform", "log2", "logsqrt2", "twin-uniform", "adalog"];
const rows: [string, number[]][] = [];

const first32 = async (f: string) => {
  const t = readNpy(await Deno.readFile(`${ROOT}${f}`));
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return {
    ...t,
    shape: [32, ...t.shape.slice(1)],
    data: (t.data as Float32Array).slice(0, 32 * per),
  };
};
const FIXTURES: [string, string][] = [
  ["fixtures/digits/vit.onnx", "fixtures/digits/calib_x.npy"],
  ["fixtures/vit4/vit4.onnx", "fixtures/digits/calib_x.npy"],
  ["fixtures/vit64/vit64.onnx", "fixtures/vit64/calib_x.npy"],
  ["fixtures/vit145/vit145.onnx", "fixtures/vit145/calib_x.npy"],
];
for (const [f, calib] of FIXTURES) {
  const x32 = await first32(calib);
  const model = await readOnnxFile(`${ROOT}${f}`);
  const pv = model.graph.nodes.filter((n) =>
    n.op === "MatMul" &&
    model.graph.nodes.some((s) => s.op === "Softmax" && s.outputs[0] === n.inputs[0])
  );
  const got = new Map<string, Captured>();
  await createExecutor(model, { registry: r }).run({ x: x32 }, {
    watch: pv.flatMap((n) => n.inputs.slice(0, 2)),
    observe: (name, t) =>
      got.set(name, { shape: [...t.shape], data: Float32Array.from(t.data as Float32Array) }),
  });
  for (const n of pv) {
    const p = got.get(n.inputs[0])!, v = got.get(n.inputs[1])!;
    rows.push([`${f} ${n.name} (${p.shape.at(-1)} tokens)`, NAMES.map((q) => relError(q, p, v))]);
  }
}

// Synthetic: 4 heads × 197 tokens, scores N(0, 3²), values N(0, 1), head dim 16 (Box–Muller).
const H = 4, T = 197, D = 16;
const u = uniformNoise(7, 2 * (H * T * T + H * T * D));
let k = 0;
const gauss = () => Math.sqrt(-2 * Math.log(1 - u[k++])) * Math.cos(2 * Math.PI * u[k++]);
const P = new Float32Array(H * T * T);
for (let row = 0; row < H * T; row++) {
  const s = Array.from({ length: T }, () => 3 * gauss());
  const m = Math.max(...s), e = s.map((v) => Math.exp(v - m)), z = e.reduce((a, b) => a + b);
  for (let j = 0; j < T; j++) P[row * T + j] = e[j] / z;
}
const V = Float32Array.from({ length: H * T * D }, gauss);
rows.push([
  `synthetic ${T} tokens, scores σ = 3`,
  NAMES.map((q) => relError(q, { shape: [H, T, T], data: P }, { shape: [H, T, D], data: V })),
]);

console.log(`| Softmax point | ${NAMES.join(" | ")} |`);
console.log(`| --- | ${NAMES.map(() => "---:").join(" | ")} |`);
for (const [name, errs] of rows) {
  console.log(`| ${name} | ${errs.map((e) => e.toFixed(4)).join(" | ")} |`);
}

// Quick check for a ViT fixture: top-1 of the whole PRESET model and of the Softmax points alone
// (every other point and the weights in float), for each --vit-softmax choice given.
//   npx deno run -A plugins/vit/_softmax_only.ts MODEL DATA_DIR PRESET SOFTMAX...
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { readNpy, readOnnxFile } from "@lowbit/graph";
import { quantize, simulate } from "@lowbit/pipeline";
import { plugin } from "./mod.ts";

const [modelPath, dataDir, preset, ...choices] = Deno.args;
const DATA = dataDir.replace(/\/?$/, "/");
const r = createRegistry();
registerBuiltins(r);
r.use(plugin);
const x = readNpy(await Deno.readFile(`${DATA}calib_x.npy`));
const ex = readNpy(await Deno.readFile(`${DATA}eval_x.npy`));
const ey = readNpy(await Deno.readFile("fixtures/digits/eval_y.npy")).data as BigInt64Array;
const model = await readOnnxFile(modelPath);
const [n, ...rest] = ex.shape;
const per = rest.reduce((a, b) => a * b, 1);
const exd = ex.data as Float32Array;

type Q = Awaited<ReturnType<typeof quantize>>["quantized"];
async function top1(q: Q): Promise<number> {
  const runner = simulate(q);
  let hit = 0;
  for (let s = 0; s < n; s += 100) {
    const c = Math.min(100, n - s);
    const batch = { ...ex, shape: [c, ...rest], data: exd.slice(s * per, (s + c) * per) };
    const y = (await runner.run({ x: batch })).data as Float32Array;
    for (let i = 0; i < c; i++) {
      let b = 0;
      for (let j = 1; j < 10; j++) if (y[i * 10 + j] > y[i * 10 + b]) b = j;
      if (BigInt(b) === ey[s + i]) hit++;
    }
  }
  return hit;
}
for (const sm of choices) {
  const t0 = Date.now();
  const { quantized } = await quantize({
    model,
    calib: { inputs: { x }, count: x.shape[0] },
    preset,
    registry: r,
    pluginOptions: { "vit-softmax": sm, "noisy-bias": false },
  });
  const plan = structuredClone(quantized.plan);
  for (const e of plan.entries) if (e.by !== "vit-softmax") e.skip = true;
  const only = await top1({ ...quantized, plan });
  console.log(`${sm} softmax-only ${only}/${n} ${(100 * only / n).toFixed(2)}`);
  const all = await top1(quantized);
  console.log(`${sm} all-${preset} ${all}/${n} ${(100 * all / n).toFixed(2)}`);
  console.log(`${sm} took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

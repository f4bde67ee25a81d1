// The figures of plugins/moe/README.md: the MoE fixture (calibration split leaves expert 2 with
// no token, expert 3 with 3) quantized with and without the plugin; top-1 on the whole
// evaluation split and on the images routed to experts 2 and 3; tokens per expert; routing
// agreement float vs quantized. Run from the repository root:
//
//   npx deno run -A plugins/moe/bench.ts [--json]
//
// Deterministic (no timing): every figure is reproduced exactly by a re-run.
import { createRegistry, type Plugin, registerBuiltins, type Registry } from "@lowbit/core";
import {
  createExecutor,
  decodeLowbitFile,
  lowbitModel,
  type Model,
  readNpy,
  readOnnxFile,
  type TensorData,
} from "@lowbit/graph";
import { encodeLowbitModel, quantize } from "@lowbit/pipeline";
import { detectMoE, lastCoverage, plugin, routingAgreement } from "./mod.ts";

const root = new URL("../../fixtures/", import.meta.url);
const npy = (p: string): TensorData => readNpy(Deno.readFileSync(new URL(p, root)));
const calibX = npy("moe/calib_x.npy");
const evalX = npy("digits/eval_x.npy");
const evalY = Array.from(npy("digits/eval_y.npy").data as BigInt64Array, Number);
const evalE = Array.from(npy("moe/eval_expert.npy").data as BigInt64Array, Number);
const rare = evalE.map((e, i) => (e >= 2 ? i : -1)).filter((i) => i >= 0);

function registry(...ps: Plugin[]): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  for (const p of ps) r.use(p);
  return r;
}

async function top1(m: Model, reg: Registry): Promise<{ all: number; rare: number }> {
  const out = (await createExecutor(m, { registry: reg }).run({ x: evalX })).logits;
  const d = out.data as Float32Array;
  const pred = evalY.map((_, i) => {
    let b = 0;
    for (let j = 1; j < 10; j++) if (d[i * 10 + j] > d[i * 10 + b]) b = j;
    return b;
  });
  const ok = pred.map((p, i) => p === evalY[i]);
  return {
    all: (100 * ok.filter(Boolean).length) / ok.length,
    rare: (100 * rare.filter((i) => ok[i]).length) / rare.length,
  };
}

interface Row {
  form: string;
  name: string;
  preset: string;
  top1: number;
  rare: number;
  agreement?: number;
  perExpert?: (number | null)[];
  coverage?: { natural: number[]; seen: number[] };
  error?: string;
}

const rows: Row[] = [];
for (const form of ["sparse", "dense"]) {
  const model = await readOnnxFile(new URL(`moe/moe_${form}.onnx`, root).pathname);
  const info = detectMoE(model.graph);
  const f = await top1(model, registry());
  rows.push({ form, name: "float", preset: "-", top1: f.all, rare: f.rare });
  const configs: [string, string, boolean, Record<string, string | number>][] = [
    ["core (no plugin)", "w8a8", false, {}],
    ["core (no plugin)", "w4a8", true, {}],
    ["--plugin moe", "w8a8", false, {}],
    ["--plugin moe", "w4a8", true, {}],
    ["--plugin moe --moe-calib natural", "w4a8", true, { "moe-calib": "natural" }],
    ["--plugin moe --moe-hessian plain", "w4a8", true, { "moe-hessian": "plain" }],
    ["--plugin moe --moe-affinity-floor 0", "w4a8", true, { "moe-affinity-floor": 0 }],
    ["--plugin moe --moe-thin 0", "w8a8", false, { "moe-thin": 0 }],
    ["--plugin moe --moe-thin 0", "w4a8", true, { "moe-thin": 0 }],
    ["--plugin moe --moe-router preset", "w4a8", true, { "moe-router": "preset" }],
    // int4 activations: where calibration coverage shows
    ["core (no plugin)", "w8a4", false, {}],
    ["--plugin moe", "w8a4", false, {}],
    ["--plugin moe --moe-thin 0", "w8a4", false, { "moe-thin": 0 }],
    ["--plugin moe --moe-calib natural --moe-thin 0", "w8a4", false, {
      "moe-calib": "natural",
      "moe-thin": 0,
    }],
  ];
  for (const [name, preset, gptq, opts] of configs) {
    const withPlugin = name.startsWith("--plugin");
    const reg = withPlugin ? registry(plugin) : registry();
    let result;
    try {
      result = await quantize({
        model,
        calib: { inputs: { x: calibX }, count: calibX.shape[0] },
        preset,
        registry: reg,
        pluginOptions: opts,
        ...(gptq ? { rounding: "gptq" as const } : {}),
      });
    } catch (e) {
      const msg = (e as Error).message;
      rows.push({
        form,
        name,
        preset: preset + (gptq ? " gptq" : ""),
        top1: NaN,
        rare: NaN,
        error: msg,
      });
      continue;
    }
    const { quantized } = result;
    const loaded = lowbitModel(decodeLowbitFile(encodeLowbitModel(quantized)), { registry: reg });
    const t = await top1(loaded, reg);
    const [ag] = await routingAgreement(model, loaded, info, { x: evalX }, { registry: reg });
    const cov = withPlugin ? lastCoverage(reg)?.[0] : undefined;
    rows.push({
      form,
      name,
      preset: preset + (gptq ? " gptq" : ""),
      top1: t.all,
      rare: t.rare,
      agreement: 100 * ag.agreement,
      perExpert: ag.experts.map((e) => e.agreement === null ? null : 100 * e.agreement),
      ...(cov ? { coverage: { natural: cov.natural, seen: cov.seen } } : {}),
    });
  }
}

if (Deno.args.includes("--json")) console.log(JSON.stringify(rows, null, 1));
else {
  const p = (v: number) => v.toFixed(2);
  console.log(
    "| dispatch | run | preset | top-1 all (497) | top-1 experts 2-3 (196) | routing agreement | per expert 0/1/2/3 | tokens per expert: data → calibration |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    if (r.error) {
      console.log(`| ${r.form} | ${r.name} | ${r.preset} | fails: ${r.error} | | | | |`);
      continue;
    }
    console.log(
      `| ${r.form} | ${r.name} | ${r.preset} | ${p(r.top1)} | ${p(r.rare)} | ${
        r.agreement === undefined ? "-" : p(r.agreement)
      } | ${r.perExpert?.map((v) => (v === null ? "-" : v.toFixed(1))).join(" / ") ?? "-"} | ${
        r.coverage ? `${r.coverage.natural.join("/")} → ${r.coverage.seen.join("/")}` : "-"
      } |`,
    );
  }
}

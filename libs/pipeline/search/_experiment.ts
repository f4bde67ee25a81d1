// The metric × strategy table of the mixed-precision search on the digits CNN and tiny ViT:
// top-1 on the evaluation split (497 images) and weight size, against uniform int4 (w4a8) and
// int8 (w8a8), all with the pipeline's int8 activations.
//
//   npx deno run -A libs/pipeline/search/_experiment.ts [cnn|vit ...] [--metrics a,b] [--samples N]
//
// Writes out/mixed_<model>.json with every row and each metric's frontier.

import { foldBatchNorm, foldConstants, readNpy, readOnnxFile } from "@lowbit/graph";
import { lossOnly, toT64 } from "@lowbit/graph/autodiff";
import { scanLayers } from "../layers.ts";
import { createSensitivityContext } from "./context.ts";
import { evaluate, floatRunner, quantize, simulate } from "@lowbit/pipeline";
import { searchMixedPrecision } from "./search.ts";
import { parseCandidate } from "./candidates.ts";
import type { TensorSpec } from "../spec.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const flag = (n: string): string | undefined => {
  const i = Deno.args.indexOf(`--${n}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const models = args.filter((a) => ["cnn", "vit", "mlp"].includes(a));
const metrics = (flag("metrics") ?? "hawq-v2,hawq,layer-hessian,zeroq,inter-layer").split(",");
const samples = Number(flag("samples") ?? 32);
const ROOT = new URL("../../../fixtures/digits/", import.meta.url);
const read = async (f: string) => readNpy(await Deno.readFile(new URL(f, ROOT)));
const calibX = await read("calib_x.npy"),
  evalX = await read("eval_x.npy"),
  evalY = await read("eval_y.npy");
const calib = { inputs: { x: calibX }, count: calibX.shape[0] };
const evalData = { inputs: { x: evalX }, count: evalX.shape[0] };

for (const name of models.length ? models : ["cnn", "vit"]) {
  const raw = await readOnnxFile(new URL(`${name}.onnx`, ROOT).pathname);
  // NOTE: fold constants (the ViT's Transpose(weight) → MatMul) so that every linear layer is quantizable.
  const model = { ...raw, graph: foldConstants(raw.graph) };
  const rows: Record<string, unknown>[] = [];
  const run = async (label: string, preset: string, specs?: Record<string, TensorSpec>) => {
    const { quantized } = await quantize({
      model,
      calib,
      preset,
      mixedSearch: specs ? () => Promise.resolve({ weights: specs }) : undefined,
    });
    const ev = await evaluate(floatRunner(model), simulate(quantized), evalData, { labels: evalY });
    let bits = 0, params = 0, bytes = 0;
    for (const e of quantized.plan.entries) {
      if (e.role !== "weight" || e.skip) continue;
      const n = quantized.model.graph.initializers.get(e.value)!.data.length;
      const fmtBits = Number(
        /(\d+)/.exec(e.format!.replace("mxfp4", "4").replace("nvfp4", "4").replace(/_e\dm\d.*/, ""))
          ?.[1] ?? 32,
      );
      bits += n * fmtBits;
      params += n;
      bytes += (n * fmtBits + (e.scale?.length ?? 0) * 32) / 8;
    }
    const row = {
      model: name,
      config: label,
      top1: ev.top1_quant,
      top1_float: ev.top1_float,
      avgBits: bits / params,
      bytes,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  };
  await run("uniform int8 (w8a8)", "w8a8");
  await run("uniform int4 (w4a8)", "w4a8");
  const frontiers: Record<string, unknown> = {};
  for (const metric of metrics) {
    const t0 = performance.now();
    const r = await searchMixedPrecision({
      model: { ...model, graph: foldBatchNorm(model.graph) },
      calib: calib.inputs,
      metric,
      strategy: "ilp",
      budgets: [{ kind: "bits", bits: 4.5 }],
      tolerance: 0.01,
      samples,
      measureFrontier: 6,
    });
    const secs = (performance.now() - t0) / 1000;
    console.log(`# ${name} ${metric}: search ${secs.toFixed(1)} s`);
    frontiers[metric] = { perLayer: r.perLayer, frontier: r.frontier };
    for (const c of r.frontier.choices) {
      const specs: Record<string, TensorSpec> = {};
      for (const [node, cand] of Object.entries(c.allocation)) {
        specs[node] = parseCandidate(cand).spec;
      }
      await run(`mixed ${metric} × ${c.strategy}`, "mixed", specs);
      Object.assign(rows[rows.length - 1], {
        searchAvgBits: c.avgBits,
        searchBytes: c.sizeBytes,
        searchSeconds: secs,
        allocation: c.allocation,
      });
    }
  }
  // *** ranking quality: Spearman ρ of each metric's scores against the measured increase of the
  // evaluation cross-entropy when only that layer is quantized (float64, first 200 eval images) ***
  const folded = foldBatchNorm(model.graph);
  const truthCands = ["int4/channel", "int3/channel", "int2/channel", "fp4_e2m1fn/channel"];
  const nEval = 200;
  const ex = toT64(evalX);
  const feeds = { x: { shape: [nEval, ...ex.shape.slice(1)], data: ex.data.slice(0, nEval * 64) } };
  const labels = Array.from(evalY.data as BigInt64Array, Number).slice(0, nEval);
  const { layers } = scanLayers(folded);
  const cmap = new Map(truthCands.map((c) => [c, parseCandidate(c)]));
  const tctx = createSensitivityContext({ graph: folded, layers, candidates: cmap, feeds, labels });
  const problem = { graph: folded, feeds, loss: { kind: "cross-entropy" as const, labels } };
  const base = lossOnly(problem);
  const truth: Record<string, number> = {};
  for (const l of layers) {
    for (const c of truthCands) {
      const w = Float64Array.from(tctx.quantizedWeight(l.node, c));
      truth[`${l.node}|${c}`] =
        lossOnly(problem, new Map([[l.weight, { shape: [...l.shape], data: w }]])) - base;
    }
  }
  const ranking: Record<string, number> = {};
  for (const metric of metrics) {
    const per =
      (frontiers[metric] as { perLayer: { node: string; scores: Record<string, number> }[] })
        .perLayer;
    const xs: number[] = [], ys: number[] = [];
    for (const l of per) {
      for (const c of truthCands) {
        if (l.scores[c] === undefined) continue;
        xs.push(l.scores[c]);
        ys.push(truth[`${l.node}|${c}`]);
      }
    }
    ranking[metric] = spearman(xs, ys);
    console.log(
      `# ${name} ${metric}: Spearman ρ vs measured ΔCE = ${
        ranking[metric].toFixed(3)
      } (${xs.length} pairs)`,
    );
  }
  await Deno.mkdir("out", { recursive: true });
  await Deno.writeTextFile(
    `out/mixed_${name}.json`,
    JSON.stringify({ rows, ranking, truth, frontiers }, null, 1),
  );
}

function ranks(v: number[]): number[] {
  const idx = v.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(v.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
    for (let k = i; k <= j; k++) r[idx[k][1]] = (i + j) / 2;
    i = j + 1;
  }
  return r;
}

function spearman(a: number[], b: number[]): number {
  const ra = ranks(a), rb = ranks(b), n = a.length;
  const ma = ra.reduce((s, x) => s + x, 0) / n, mb = rb.reduce((s, x) => s + x, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) ** 2;
    sbb += (rb[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

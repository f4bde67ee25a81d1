/**
 * The plugin record `--plugin vit` loads: quantizers, markers, options and stages.
 *
 * @module
 */

import {
  defaultQuantizerFor,
  type GraphView,
  LowbitError,
  type MarkSpec,
  type Plugin,
  type PluginOptionValues,
  type Registry,
} from "@lowbit/core";
import type { QuantizeState } from "@lowbit/pipeline";
import { logQuantizer } from "./log_quantizer.ts";
import { twinUniform } from "./twin.ts";
import { noisyUniform } from "./noise.ts";
import { findActivationMatMuls, findGelu, findLayerNorm, findSoftmax } from "./markers.ts";
import { fitVitPoints } from "./fit_stage.ts";
import { reparamStage } from "./reparam.ts";
import { biasCorrectionStage, biasReferenceStage } from "./bias.ts";
import { autoStage } from "./auto.ts";
import { logOnnxModel } from "./onnx_export.ts";
import { histogramSection } from "./report_section.ts";
import { lowbitModel, readLowbitFile, writeOnnx } from "@lowbit/graph";

/** `--vit-softmax` choices and the quantizer each names. */
export const SOFTMAX_QUANTIZERS: Readonly<Record<string, string>> = {
  adalog: "adalog",
  log2: "log2",
  logsqrt2: "logsqrt2",
  twin: "twin-uniform",
  uniform: "uniform",
};

/** `--vit-gelu` choices ("auto": the best on calibration data) and their quantizers. */
export const GELU_QUANTIZERS: Readonly<Record<string, string>> = {
  auto: "twin-uniform",
  twin: "twin-uniform",
  adalog: "adalog",
  uniform: "uniform",
};

const MARKERS = ["vit-softmax", "vit-attention-matmul", "vit-gelu", "vit-layernorm"];

const opt = (o: PluginOptionValues, name: string, dflt: string): string =>
  typeof o[name] === "string" ? o[name] as string : dflt;

/**
 * The marks of a graph under the plugin's options (what its four markers return, in order).
 *
 * @param g the graph
 * @param options plugin options (`vit-softmax`, `vit-gelu`)
 * @returns the marks of each marker, by marker name
 *
 * @example
 * ```ts
 * import { vitMarks } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const g = { inputs: [], outputs: [], initializers: new Map(), nodes: [
 *   { name: "s", op: "Softmax", domain: "", inputs: ["a"], outputs: ["p"], attrs: {} },
 *   { name: "pv", op: "MatMul", domain: "", inputs: ["p", "v"], outputs: ["o"], attrs: {} }] };
 * const m = vitMarks(g, { "vit-softmax": "log2" });
 * assert.deepEqual(m["vit-softmax"].map((s) => [s.value, s.quantizer]), [["p", "log2"]]);
 * assert.deepEqual(m["vit-attention-matmul"].map((s) => s.value), ["v"]);
 * ```
 */
export function vitMarks(g: GraphView, options: PluginOptionValues): Record<string, MarkSpec[]> {
  const sq = SOFTMAX_QUANTIZERS[opt(options, "vit-softmax", "adalog")] ?? "adalog";
  const gq = GELU_QUANTIZERS[opt(options, "vit-gelu", "auto")] ?? "twin-uniform";
  const soft = findSoftmax(g);
  const softValues = new Set(soft.map((f) => f.value));
  return {
    "vit-softmax": soft.map((f) => ({ value: f.value, quantizer: sq, note: "Softmax output" })),
    "vit-attention-matmul": findActivationMatMuls(g).filter((f) => !softValues.has(f.value))
      .map((f) => ({ value: f.value, note: `operand of ${f.node} (activation × activation)` })),
    "vit-gelu": findGelu(g).map((f) => ({ value: f.value, quantizer: gq, note: "GELU output" })),
    // LayerNorm outputs: the plugin fits them (clipping searched on the next layers' outputs),
    // also where a layer already quantizes them as its input.
    "vit-layernorm": findLayerNorm(g).map((f) => ({
      value: f.value,
      quantizer: "uniform",
      note: "LayerNorm output",
    })),
  };
}

/** The layer inputs `--noisy-bias` moves to `noisy-uniform`: static uniform inputs of Linears. */
function noisyStage(st: QuantizeState): void {
  if (st.opts.plan || st.pluginOptions["noisy-bias"] !== true) return;
  const linear = new Set(
    st.layers.filter((l) => l.op === "MatMul" || l.op === "Gemm").map((l) => l.input),
  );
  for (const e of st.entries) {
    if (e.role !== "activation" || e.skip || e.dynamic || !linear.has(e.value)) continue;
    if ((e.quantizer ?? "uniform") !== "uniform") continue;
    if (st.registry.formats.get(e.format!).family !== "int") continue;
    e.quantizer = "noisy-uniform";
  }
}

/** A model where no marker found anything: say so once, for the whole plugin. */
function nothingStage(st: QuantizeState): void {
  if (st.opts.plan) return;
  if (st.entries.some((e) => e.by !== undefined && MARKERS.includes(e.by))) return;
  st.warnings.push(
    "plugin vit found nothing to do: the model has no Softmax, attention MatMul, GELU or " +
      "LayerNorm; it is quantized as without --plugin vit",
  );
}

/**
 * Points whose format the plugin's quantizer does not handle (fp8, MX presets): the preset's
 * quantizer for the format instead, said once per quantizer and format.
 */
function formatStage(st: QuantizeState): void {
  const said = new Set<string>();
  for (const e of st.entries) {
    if (e.skip || !e.by || !MARKERS.includes(e.by) || !e.quantizer || !e.format) continue;
    const fmt = st.registry.formats.get(e.format);
    if (st.registry.quantizers.get(e.quantizer).supports(fmt)) continue;
    const instead = defaultQuantizerFor(fmt);
    const key = `${e.quantizer}|${e.format}`;
    if (!said.has(key)) {
      said.add(key);
      st.warnings.push(
        `vit: '${e.quantizer}' does not handle ${e.format}; the plugin's points in ${e.format} ` +
          `use '${instead}' instead`,
      );
    }
    e.quantizer = instead;
  }
}

/** `lowbit vit-onnx IN.lowbit OUT.onnx`. */
async function vitOnnxCommand(args: string[], r: Registry): Promise<number> {
  if (args.length !== 2 || !args[0].endsWith(".lowbit") || !args[1].endsWith(".onnx")) {
    throw new LowbitError("INVALID_ARGUMENT", "usage: lowbit vit-onnx IN.lowbit OUT.onnx");
  }
  const model = logOnnxModel(lowbitModel(await readLowbitFile(args[0]), { registry: r }), r);
  await Deno.writeFile(args[1], writeOnnx(model));
  console.log(`${args[0]} → ${args[1]} (standard ONNX ops)`);
  return 0;
}

/** The plugin: what `--plugin vit` loads. */
export const plugin: Plugin = {
  name: "vit",
  version: "0.1.0",
  register(r: Registry): void {
    r.quantizers.register(logQuantizer("log2", r));
    r.quantizers.register(logQuantizer("logsqrt2", r));
    r.quantizers.register(logQuantizer("adalog", r));
    r.quantizers.register(twinUniform(r));
    r.quantizers.register(noisyUniform(r));
    for (const name of MARKERS) {
      r.markers.register({ name, mark: (g, o) => vitMarks(g, o)[name] });
    }
    r.options.register({
      name: "vit-softmax",
      type: "string",
      help: "vit: quantizer of Softmax outputs",
      choices: Object.keys(SOFTMAX_QUANTIZERS),
      default: "adalog",
    });
    r.options.register({
      name: "vit-gelu",
      type: "string",
      help: "vit: quantizer of GELU outputs (auto: the best on calibration data)",
      choices: Object.keys(GELU_QUANTIZERS),
      default: "auto",
    });
    r.options.register({
      name: "vit-layernorm",
      type: "string",
      help: "vit: LayerNorm outputs — reparam (RepQ-ViT: per-channel ranges folded into the " +
        "LayerNorm affine and the next Linear, then one scale per tensor), tensor (as they are) " +
        "or auto (the one with the lower output error on held-out calibration samples)",
      choices: ["auto", "reparam", "tensor"],
      default: "auto",
    });
    r.options.register({
      name: "vit-bias",
      type: "string",
      help: "vit: empirical bias correction of the quantized layers, depth by depth (empirical), " +
        "none (off) or auto (the one with the lower output error on held-out calibration samples)",
      choices: ["auto", "empirical", "off"],
      default: "auto",
    });
    r.options.register({
      name: "noisy-bias",
      type: "boolean",
      help: "vit: NoisyQuant's seeded noisy bias on the uniform inputs of Linear layers and GELU",
      default: false,
    });
    r.commands.register({
      name: "vit-onnx",
      summary: "vit: write a .lowbit whose log-quantized points become standard ONNX ops",
      main: (args: string[]) => vitOnnxCommand(args, r),
    });
    r.reportSections.register(histogramSection(r));
    r.stages.register({ name: "vit-nothing", after: "mark", run: nothingStage });
    r.stages.register({ name: "vit-formats", after: "vit-nothing", run: formatStage });
    r.stages.register({ name: "vit-noisy-bias", after: "vit-formats", run: noisyStage });
    // resolves `auto` in --vit-layernorm / --vit-bias before the stages that read them
    r.stages.register({
      name: "vit-auto",
      after: "check",
      run: async (st: QuantizeState) => void await autoStage(st),
    });
    r.stages.register({
      name: "vit-reparam",
      after: "smoothquant",
      run: async (st: QuantizeState) => {
        if (opt(st.pluginOptions, "vit-layernorm", "reparam") === "reparam") {
          await reparamStage(st);
        }
      },
    });
    r.stages.register({
      name: "vit-fit",
      after: "calibrate",
      run: (st: QuantizeState) =>
        fitVitPoints(st, {
          gelu: opt(st.pluginOptions, "vit-gelu", "auto"),
          noisy: st.pluginOptions["noisy-bias"] === true,
        }),
    });
    const biasOn = (st: QuantizeState) =>
      opt(st.pluginOptions, "vit-bias", "empirical") === "empirical";
    r.stages.register({
      name: "vit-bias-ref",
      after: "vit-fit",
      run: async (st: QuantizeState) => {
        if (biasOn(st)) await biasReferenceStage(st);
      },
    });
    r.stages.register({
      name: "vit-bias",
      after: "weights",
      run: async (st: QuantizeState) => {
        if (biasOn(st)) await biasCorrectionStage(st);
      },
    });
  },
};

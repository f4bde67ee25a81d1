/**
 * @lowbit/vit: quantizing vision transformers' attention and GELU activations.
 *
 * With `--plugin vit`, every Softmax output, both operands of attention MatMuls (Q·Kᵀ, P·V),
 * every GELU output (op or decomposed) and every LayerNorm output (op or decomposed) become
 * quantization points. Softmax outputs get a log quantizer (`adalog` by default: base searched
 * per tensor on calibration data to minimise the attention output error; or `log2`, `logsqrt2`,
 * PTQ4ViT's `twin-uniform`, the core's `uniform`), GELU outputs the best of twin-uniform,
 * adalog and uniform on calibration data, and `--noisy-bias` adds NoisyQuant's seeded noisy bias
 * to the uniform points that feed Linear layers and to twin-uniform GELU points.
 * `lowbit --plugin vit vit-onnx IN.lowbit OUT.onnx` writes the log-quantized points as
 * standard ONNX ops.
 *
 * @example
 * ```ts
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * import { plugin } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const r = createRegistry();
 * registerBuiltins(r);
 * r.use(plugin);
 * assert.ok(r.quantizers.list().includes("adalog"));
 * assert.deepEqual(r.markers.list(), ["vit-softmax", "vit-attention-matmul", "vit-gelu", "vit-layernorm"]);
 * ```
 *
 * @module
 */

export * from "./log_quantizer.ts";
export * from "./twin.ts";
export * from "./noise.ts";
export * from "./markers.ts";
export { type Captured, FIT_SAMPLES, FITTED, productSquaredNorm } from "./fit_stage.ts";
export * from "./onnx_export.ts";
export * from "./histogram.ts";
export * from "./report_section.ts";
export * from "./plugin.ts";
export {
  bestChoice,
  HELD_OUT_FROM,
  type ScoredChoice,
  scoreStageChoices,
  stageCandidates,
  type StageChoice,
} from "./auto.ts";
export { BIAS_SAMPLES, type BiasSite, biasSites, channelMeans } from "./bias.ts";
export {
  applyReparam,
  type LayerNormReparam,
  reparamFactors,
  type ReparamSite,
  reparamSite,
} from "./reparam.ts";

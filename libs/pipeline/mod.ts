/**
 * @lowbit/pipeline: the flow of one `lowbit quantize` as plain functions over
 * plain data — presets, ordered wildcard rules, the QuantPlan, calibration,
 * GPTQ / bias correction / SmoothQuant, evaluation and the HTML report. The
 * CLI is a thin shell over it.
 *
 * @example
 * ```ts
 * import { applyRules, getPreset } from "@lowbit/pipeline";
 * const { configs } = applyRules(["fc1", "fc2"], getPreset("w8a8").base, [
 *   { match: "fc2", skip: true },
 * ]);
 * if (!configs.fc2.skip || configs.fc1.skip) throw new Error();
 * ```
 *
 * @module
 */

export * from "./spec.ts";
export * from "./rules.ts";
export * from "./presets.ts";
export * from "./layers.ts";
export * from "./subgraph_fold.ts";
export * from "./prepare_folds.ts";
export * from "./stateful.ts";
export * from "./stateful_bound.ts";
export * from "./tap_split.ts";
export * from "./plan.ts";
export * from "./gptq.ts";
export * from "./data.ts";
export * from "./progress.ts";
export * from "./report/histogram.ts";
export * from "./report/chartjs.ts";
export * from "./report/html.ts";
export * from "./report/units.ts";
export * from "./tensor_quant.ts";
export * from "./metrics.ts";
export * from "./layer_inputs.ts";
export * from "./smoothquant.ts";
export * from "./equalize.ts";
export * from "./equalize_homogeneous.ts";
export * from "./bias_correction.ts";
export * from "./propagate.ts";
export * from "./calibrate.ts";
export * from "./quantize.ts";
export * from "./simulate.ts";
export * from "./evaluate.ts";
export * from "./export.ts";
export * from "./report/build.ts";
export * from "./lowbit_model.ts";
export * from "./load.ts";
export * from "./guard.ts";
// Types of the other packages that appear in this package's signatures, re-exported so that its
// docs are complete.
export type { Codes, Granularity, QParams, QuantMode, Range, Tensor } from "@lowbit/core";
export type {
  Attr,
  Dim,
  DType,
  Graph,
  LowbitTensor,
  Model,
  Node,
  OpsetImport,
  TensorData,
  TensorStorage,
  ValueInfo,
} from "@lowbit/graph";
export * from "./report/sections.ts";
export * from "./guard_delta.ts";
export * from "./guard_measure.ts";
export * from "./guard_split.ts";

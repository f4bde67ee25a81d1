/**
 * `@lowbit/gnn`: quantized message passing for graph neural networks. Detects aggregations in
 * dense-adjacency and edge-list exports, quantizes their inputs and outputs with degree-aware
 * ranges (per in-degree bin, degrees computed at run time from the graph input) and protected
 * high-degree nodes, ties update-MLP layers for the mixed-precision search, and adds
 * `lowbit gnn eval`. Load it with `--plugin gnn`, or `registry.use(plugin)`.
 *
 * @module
 */

export * from "./plugin.ts";
export * from "./detect.ts";
export * from "./degrees.ts";
export * from "./quantizer.ts";
export * from "./options.ts";
export * from "./marker.ts";
export * from "./groups.ts";
export { checkGraphInputs } from "./stages.ts";
export * from "./eval_command.ts";
export * from "./static_shapes.ts";
export * from "./mixed.ts";
export { findIndexAddExports, type IndexAddExport, repairIndexAdd } from "./index_add.ts";
// Types of the platform that appear in this package's signatures, re-exported so that its docs
// are complete.
export type {
  Allocation,
  BatchContext,
  CalibrationHook,
  CalibrationSource,
  Calibrator,
  CalibratorFactory,
  CalibratorOptions,
  CalibResult,
  Codes,
  FitOptions,
  FormatFamily,
  Granularity,
  GraphView,
  HookBatch,
  LayerView,
  Marker,
  MarkSpec,
  NodeView,
  NumberFormat,
  Plugin,
  PluginCommand,
  PluginOption,
  PluginOptionValues,
  QParams,
  Quantizer,
  QuantMode,
  Range,
  Registry,
  SearchGroupProvider,
  SearchGroups,
  SearchStrategy,
  SensitivityMetric,
  SourceBatch,
  SourceContext,
  Stage,
  Table,
  Tensor,
  TensorValue,
} from "@lowbit/core";
export type {
  Attr,
  Dim,
  DType,
  Graph,
  Model,
  Node,
  OpsetImport,
  TensorData,
  TensorStorage,
  ValueInfo,
} from "@lowbit/graph";
export type {
  GranularitySpec,
  MixedSearch,
  MixedSearchChoice,
  MixedSearchContext,
  Rounding,
  SearchLayer,
  TensorSpec,
} from "@lowbit/pipeline";

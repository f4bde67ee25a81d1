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
export { SELF_LOOP_SUFFIX, splitSelfLoops } from "./self_loops.ts";
export { findIndexAddExports, type IndexAddExport, repairIndexAdd } from "./index_add.ts";

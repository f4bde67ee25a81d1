/**
 * The plugin's command-line options (`--gnn-ranges`, `--gnn-bins`, `--gnn-protect`,
 * `--gnn-protect-format`, `--gnn-fit`, `--gnn-columns`, `--gnn-index-add`, `--gnn-self-loops`,
 * `--gnn-agg-format`) and their parsed values.
 *
 * @module
 */

import { LowbitError, type PluginOption, type PluginOptionValues } from "@lowbit/core";

/** The options the plugin registers. */
export const GNN_OPTIONS: readonly PluginOption[] = [
  {
    name: "gnn-ranges",
    type: "string",
    help: "gnn: aggregation ranges per in-degree bin (degree) or one per tensor (uniform)",
    choices: ["degree", "uniform"],
    default: "degree",
  },
  {
    name: "gnn-bins",
    type: "number",
    help: "gnn: number of in-degree bins [0,2) [2,4) [4,8) ..., the last open-ended",
    default: 8,
  },
  {
    name: "gnn-protect",
    type: "number",
    help: "gnn: fraction of nodes, by in-degree, whose aggregations are protected (0..1)",
    default: 0,
  },
  {
    name: "gnn-protect-format",
    type: "string",
    help: "gnn: protected nodes at int8 or left in float",
    choices: ["int8", "float"],
    default: "int8",
  },
  {
    name: "gnn-fit",
    type: "string",
    help: "gnn: degree-aware ranges from each bin's min / max (minmax), clipped to the least " +
      "squared error (mse), or per point whichever gives the model output closer to float on " +
      "the calibration graph (auto)",
    choices: ["auto", "minmax", "mse"],
    default: "auto",
  },
  {
    name: "gnn-columns",
    type: "string",
    help: "gnn: one range per feature column within each degree bin (on: bin × column ranges) " +
      "or one per bin (off)",
    choices: ["on", "off"],
    default: "on",
  },
  {
    name: "gnn-index-add",
    type: "string",
    help: "gnn: a torch index_add export (scatter without reduction, then Add) is refused " +
      "when a destination repeats (error), or read as torch's sum (sum)",
    choices: ["error", "sum"],
    default: "error",
  },
  {
    name: "gnn-self-loops",
    type: "string",
    help: "gnn: a dense aggregation's self-loop term (the adjacency's diagonal) added after the " +
      "quantized neighbours' sum (split) or quantized with it, as exported (inside)",
    choices: ["split", "inside"],
    default: "split",
  },
  {
    name: "gnn-agg-format",
    type: "string",
    help: "gnn: format of the aggregation points (default: the preset's activation format)",
  },
];

/** Parsed plugin options. */
export interface GnnOptions {
  /** Degree-binned or per-tensor ranges. */
  ranges: "degree" | "uniform";
  /** Degree bins. */
  bins: number;
  /** Protected fraction of nodes. */
  protect: number;
  /** Protected nodes' format. */
  protectFormat: "int8" | "float";
  /** How degree-aware ranges are fitted. */
  fit: "auto" | "minmax" | "mse";
  /** One range per feature column within each set. */
  columns: boolean;
  /** Dense aggregations' self-loop terms split off the quantized sum, or left inside it. */
  selfLoops: "split" | "inside";
  /** Aggregation points' format, if not the preset's. */
  aggFormat?: string;
}

/**
 * The plugin's options with defaults, checked.
 *
 * @param o option values by name (`state.pluginOptions`, a marker's options)
 * @returns the parsed options
 *
 * @example
 * ```ts
 * import { gnnOptions } from "@lowbit/gnn";
 * const o = gnnOptions({ "gnn-protect": 0.05 });
 * if (o.ranges !== "degree" || o.bins !== 8 || o.protect !== 0.05) throw new Error();
 * if (o.selfLoops !== "split") throw new Error();
 * ```
 */
export function gnnOptions(o: PluginOptionValues): GnnOptions {
  const ranges = String(o["gnn-ranges"] ?? "degree");
  const protectFormat = String(o["gnn-protect-format"] ?? "int8");
  const bins = Number(o["gnn-bins"] ?? 8), protect = Number(o["gnn-protect"] ?? 0);
  const bad = (what: string): never => {
    throw new LowbitError("INVALID_ARGUMENT", `gnn plugin: ${what}`);
  };
  if (ranges !== "degree" && ranges !== "uniform") bad(`--gnn-ranges is degree or uniform`);
  if (protectFormat !== "int8" && protectFormat !== "float") {
    bad("--gnn-protect-format is int8 or float");
  }
  if (!Number.isInteger(bins) || bins < 1 || bins > 32) bad("--gnn-bins is an integer 1..32");
  if (!(protect >= 0 && protect <= 1)) bad("--gnn-protect is a fraction 0..1");
  const fit = String(o["gnn-fit"] ?? "auto");
  if (fit !== "auto" && fit !== "minmax" && fit !== "mse") bad("--gnn-fit is auto, minmax or mse");
  const columns = String(o["gnn-columns"] ?? "on");
  if (columns !== "on" && columns !== "off") bad("--gnn-columns is on or off");
  const selfLoops = String(o["gnn-self-loops"] ?? "split");
  if (selfLoops !== "split" && selfLoops !== "inside") bad("--gnn-self-loops is split or inside");
  const agg = o["gnn-agg-format"];
  return {
    ranges: ranges as GnnOptions["ranges"],
    bins,
    protect,
    protectFormat: protectFormat as GnnOptions["protectFormat"],
    fit: fit as GnnOptions["fit"],
    columns: columns === "on",
    selfLoops: selfLoops as GnnOptions["selfLoops"],
    ...(agg !== undefined && agg !== "" ? { aggFormat: String(agg) } : {}),
  };
}

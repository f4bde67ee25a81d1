/**
 * The vocabulary shared by presets, rules and plans: how one tensor of one
 * layer is to be quantized, before it is resolved against a concrete model.
 *
 * @module
 */

import { LowbitError, type QuantMode } from "@lowbit/core";

/**
 * Model-agnostic granularity, resolved per layer when the plan is built:
 * `"tensor"`; `"channel"` = one scale per output channel of a weight (per
 * tensor for activations); `{ group: g }` = groups of `g` consecutive elements
 * along the reduction (input) axis, shrunk to the largest divisor of that
 * axis that is ≤ g for small layers.
 */
export type GranularitySpec = "tensor" | "channel" | { readonly group: number };

/** How weights are rounded to the grid. */
export type Rounding = "rtn" | "gptq";

/** How one tensor role (weights or activations) of a layer is quantized. */
export interface TensorSpec {
  /** Registry format name, e.g. "int8", "int4", "fp8_e4m3fn", "mxfp4", "nvfp4". */
  format: string;
  /** Granularity (see {@link GranularitySpec}). */
  granularity: GranularitySpec;
  /** Symmetric or affine. */
  mode: QuantMode;
  /** Calibrator name (activations; weights always use their exact min/max). */
  calibrator?: string;
  /** Weight rounding (weights only). */
  rounding?: Rounding;
  /** Registered quantizer (default: the built-in one for the format). */
  quantizer?: string;
}

/** The resolved configuration of one layer. */
export interface LayerConfig {
  /** Leave the layer in float. */
  skip: boolean;
  /** Weight quantization, or null for float weights. */
  weight: TensorSpec | null;
  /** Input-activation quantization, or null for float activations. */
  activation: TensorSpec | null;
}

/**
 * Parses a granularity written in a config file: `"tensor"`, `"channel"`,
 * `"group:128"`, or `{ "group": 128 }`.
 *
 * @param v the value as written
 * @returns the granularity
 *
 * @example
 * ```ts
 * import { parseGranularity } from "@lowbit/pipeline";
 * const g = parseGranularity("group:64");
 * if (typeof g !== "object" || g.group !== 64) throw new Error();
 * ```
 */
export function parseGranularity(v: unknown): GranularitySpec {
  if (v === "tensor" || v === "per-tensor") return "tensor";
  if (v === "channel" || v === "per-channel") return "channel";
  if (typeof v === "string") {
    const m = /^(?:per-)?group:(\d+)$/.exec(v);
    if (m && Number(m[1]) > 0) return { group: Number(m[1]) };
  }
  if (v && typeof v === "object" && "group" in v) {
    const g = (v as { group: unknown }).group;
    if (typeof g === "number" && Number.isInteger(g) && g > 0) return { group: g };
  }
  throw new LowbitError(
    "INVALID_ARGUMENT",
    `bad granularity ${JSON.stringify(v)}; use "tensor", "channel" or "group:<size>"`,
  );
}

/**
 * Writes a granularity the way config files spell it.
 *
 * @param g the granularity
 * @returns `"tensor"`, `"channel"` or `"group:<size>"`
 *
 * @example
 * ```ts
 * import { formatGranularity } from "@lowbit/pipeline";
 * if (formatGranularity({ group: 32 }) !== "group:32") throw new Error();
 * ```
 */
export function formatGranularity(g: GranularitySpec): string {
  return typeof g === "string" ? g : `group:${g.group}`;
}

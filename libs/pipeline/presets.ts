/**
 * Named presets, as in TensorRT Model Optimizer: each is the base
 * {@link LayerConfig} applied to every quantizable layer before rules.
 *
 * | preset  | weights                                   | activations (inputs of the layer) |
 * | ------- | ----------------------------------------- | --------------------------------- |
 * | `w8a8`  | int8, per output channel, symmetric       | int8, per tensor, affine, minmax  |
 * | `w4a8`  | int4, groups of 128 along the input axis  | int8, per tensor, affine, minmax  |
 * | `w4a16` | int4, groups of 128 along the input axis  | float                             |
 * | `w8a4`  | int8, per output channel, symmetric       | int4, per tensor, affine, minmax  |
 * | `w4a4`  | int4, groups of 128 along the input axis  | int4, per tensor, affine, minmax  |
 * | `fp8`   | fp8_e4m3fn, per output channel            | fp8_e4m3fn, per tensor, minmax    |
 * | `mxfp8` | mxfp8 (e4m3 elements, e8m0 per 32)        | mxfp8, scales computed on the fly |
 * | `mxfp4` | mxfp4 (e2m1 elements, e8m0 per 32)        | mxfp4, scales computed on the fly |
 * | `nvfp4` | nvfp4 (e2m1, e4m3 per 16, fp32 tensor)    | nvfp4, scales computed on the fly |
 * | `mixed` | per layer, chosen by the mixed-precision search (see {@link MixedSearch}) | int8, or per layer from `--act-formats` |
 *
 * Groups: a layer whose input axis is shorter than the group size, or not a
 * multiple of it, uses the largest divisor of the input axis that is ≤ the
 * group size (so a 64-wide layer under `group:128` gets one group of 64 per
 * output channel, i.e. per channel). Block formats (MX, NVFP4) keep their
 * own block size and pad nothing: a layer whose input axis is not a multiple
 * of the block is left in float, with the reason in the plan.
 *
 * @module
 */

import { LowbitError, type SearchGroups, type Tensor } from "@lowbit/core";
import type { Model } from "@lowbit/graph";
import type { LayerConfig, TensorSpec } from "./spec.ts";

/** A named preset. */
export interface Preset {
  /** Name used with `--preset`. */
  readonly name: string;
  /** One line for help and the report. */
  readonly description: string;
  /** The base config of every quantizable layer. */
  readonly base: LayerConfig;
}

const int8Act: TensorSpec = {
  format: "int8",
  granularity: "tensor",
  mode: "affine",
  calibrator: "minmax",
};

function both(format: string, group: number): LayerConfig {
  return {
    skip: false,
    weight: { format, granularity: { group }, mode: "symmetric", rounding: "rtn" },
    activation: { format, granularity: { group }, mode: "symmetric", calibrator: "dynamic" },
  };
}

const PRESETS: readonly Preset[] = [
  {
    name: "w8a8",
    description: "int8 per-channel symmetric weights, int8 per-tensor activations",
    base: {
      skip: false,
      weight: { format: "int8", granularity: "channel", mode: "symmetric", rounding: "rtn" },
      activation: int8Act,
    },
  },
  {
    name: "w4a8",
    description: "int4 weights in groups of 128 (or less), int8 per-tensor activations",
    base: {
      skip: false,
      weight: { format: "int4", granularity: { group: 128 }, mode: "symmetric", rounding: "rtn" },
      activation: int8Act,
    },
  },
  {
    name: "w4a16",
    description: "int4 weights in groups of 128 (or less), float activations",
    base: {
      skip: false,
      weight: { format: "int4", granularity: { group: 128 }, mode: "symmetric", rounding: "rtn" },
      activation: null,
    },
  },
  {
    name: "w8a4",
    description: "int8 per-channel weights, every quantized activation int4 per tensor",
    base: {
      skip: false,
      weight: { format: "int8", granularity: "channel", mode: "symmetric", rounding: "rtn" },
      activation: { ...int8Act, format: "int4" },
    },
  },
  {
    name: "w4a4",
    description: "int4 weights in groups of 128 (or less), every quantized activation int4",
    base: {
      skip: false,
      weight: { format: "int4", granularity: { group: 128 }, mode: "symmetric", rounding: "rtn" },
      activation: { ...int8Act, format: "int4" },
    },
  },
  {
    name: "fp8",
    description: "fp8 e4m3 per-channel weights, fp8 e4m3 per-tensor activations",
    base: {
      skip: false,
      weight: { format: "fp8_e4m3fn", granularity: "channel", mode: "symmetric", rounding: "rtn" },
      activation: {
        format: "fp8_e4m3fn",
        granularity: "tensor",
        mode: "symmetric",
        calibrator: "minmax",
      },
    },
  },
  {
    name: "mxfp8",
    description: "OCP MXFP8 (e4m3, e8m0 scale per 32) weights and activations",
    base: both("mxfp8_e4m3", 32),
  },
  {
    name: "mxfp4",
    description: "OCP MXFP4 (e2m1, e8m0 scale per 32) weights and activations",
    base: both("mxfp4", 32),
  },
  {
    name: "nvfp4",
    description: "NVFP4 (e2m1, e4m3 scale per 16, fp32 tensor scale) weights and activations",
    base: both("nvfp4", 16),
  },
  {
    name: "mixed",
    description:
      "per-layer weight formats chosen by the mixed-precision search, int8 activations (or searched too)",
    base: {
      skip: false,
      weight: { format: "int8", granularity: "channel", mode: "symmetric", rounding: "rtn" },
      activation: int8Act,
    },
  },
];

/**
 * Names of every preset.
 *
 * @returns the names, in documentation order
 *
 * @example
 * ```ts
 * import { presetNames } from "@lowbit/pipeline";
 * if (!presetNames().includes("w8a8")) throw new Error();
 * ```
 */
export function presetNames(): string[] {
  return PRESETS.map((p) => p.name);
}

/**
 * Looks a preset up; an unknown name is a `LowbitError` listing the presets.
 *
 * @param name preset name
 * @returns a fresh copy of the preset
 *
 * @example
 * ```ts
 * import { getPreset } from "@lowbit/pipeline";
 * if (getPreset("w4a16").base.activation !== null) throw new Error();
 * ```
 */
export function getPreset(name: string): Preset {
  const p = PRESETS.find((q) => q.name === name);
  if (!p) {
    throw new LowbitError(
      "UNKNOWN_NAME",
      `unknown preset '${name}'; presets: ${presetNames().join(", ")}`,
    );
  }
  return structuredClone(p);
}

/**
 * Group size actually used for a reduction axis of length `k` under a
 * requested group size `g`: `g` if it divides `k`, otherwise the largest
 * divisor of `k` that is ≤ `g`.
 *
 * @param k length of the input axis
 * @param g requested group size
 * @returns the group size
 *
 * @example
 * ```ts
 * import { effectiveGroupSize } from "@lowbit/pipeline";
 * if (effectiveGroupSize(64, 128) !== 64) throw new Error();
 * if (effectiveGroupSize(72, 32) !== 24) throw new Error();
 * ```
 */
export function effectiveGroupSize(k: number, g: number): number {
  for (let d = Math.min(g, k); d >= 1; d--) if (k % d === 0) return d;
  return 1;
}

/** One quantizable layer as the mixed-precision search sees it. */
export interface SearchLayer {
  /** Node name. */
  node: string;
  /** Operator type. */
  op: string;
  /** The weight as a 2-D [out, in] float tensor. */
  weight: Tensor;
}

/** What the pipeline hands the mixed-precision search. */
export interface MixedSearchContext {
  /** The prepared model (constants and BatchNormalization folded), as `quantize` sees it. */
  model?: Model;
  /** Search groups supplied by plugins (ties, per-layer candidates). */
  groups?: readonly SearchGroups[];
  /** The quantizable layers, in execution order. */
  layers: readonly SearchLayer[];
  /** Options from the command line (`budget`, `metric`, `search`, `tolerance`, ...). */
  options: Readonly<Record<string, string>>;
  /**
   * Top-1 agreement with the float model (0..1) on the calibration data when the
   * given per-layer weight configs are applied and, when given, the layers' inputs
   * are quantized with `activations` (null: float; scales from the inputs' min/max on
   * these samples); lets a strategy like bisection measure the real metric.
   */
  measure(
    weights: Readonly<Record<string, TensorSpec | null>>,
    activations?: Readonly<Record<string, TensorSpec | null>>,
  ): Promise<number>;
  /** Captured input activations of each layer, 2-D [rows, in], on a calibration subset. */
  inputs(node: string): Tensor;
  /** Reports progress (0..1) to the progress bar. */
  progress(fraction: number): void;
}

/** What the mixed-precision search chose. */
export interface MixedSearchChoice {
  /** Weight spec per layer node (null: float). */
  weights: Record<string, TensorSpec | null>;
  /** Input activation spec per layer node (null: float); layers not listed keep the preset's int8. */
  activations?: Record<string, TensorSpec | null>;
  /**
   * Spec per activation point the search allocated (`--budget-act`; null: float): marked values
   * that are not layer inputs, named by a plugin's search groups.
   */
  points?: Record<string, TensorSpec | null>;
  /** What the search had to change (a metric fallback, ...), for the user. */
  warnings?: string[];
}

/**
 * The hook that `--preset mixed` calls: the mixed-precision search returns a
 * weight spec (or null for float) per layer and, when it searched activation
 * formats, an activation spec per layer. Implemented in the search library
 * and passed into {@link QuantizeOptions.mixedSearch} by the CLI.
 */
export type MixedSearch = (ctx: MixedSearchContext) => Promise<MixedSearchChoice>;

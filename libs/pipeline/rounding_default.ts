/**
 * The weight rounding a layer gets when neither the preset nor a rule nor `--rounding` chose
 * one: GPTQ for depthwise convolutions (one input channel per group, a window of ≥ 2 taps,
 * per-channel integer weights) when calibration data is there, round-to-nearest elsewhere.
 *
 * Why depthwise: an output of a depthwise conv sums only its window's taps (9 for 3×3), so the
 * taps' rounding errors do not average out, and the filters that matter most are edge filters
 * whose taps nearly cancel. On a flat region (a text line's background) such a filter's output is
 * its taps' sum times the input: the per-tap errors (each ≤ half a step, 45 dB per layer on
 * PP-OCRv4 rec's first depthwise conv) add up to a per-channel offset that is large next to the
 * filter's small true response there, and brought PP-OCRv4 rec's output to 9.4 dB alone. GPTQ
 * rounds each tap knowing the input's second moments (on a flat input: it keeps the taps' sum on
 * the grid point nearest the float sum), and with a window of 9 its Hessian is 9 × 9 per
 * channel, so it costs little. Pointwise and dense layers sum hundreds of products whose rounding
 * errors average out; there GPTQ costs far more for less, and stays opt-in (`--gptq`).
 *
 * @module
 */

import { getFormat } from "@lowbit/core";
import type { Layer } from "./layers.ts";
import type { Rounding, TensorSpec } from "./spec.ts";

/**
 * Whether a layer is a depthwise convolution: a 1-D or 2-D Conv whose every group reads one
 * input channel, with a window of at least two taps.
 *
 * @param l the layer
 * @returns true for depthwise convs
 *
 * @example
 * ```ts
 * import { isDepthwiseConv } from "@lowbit/pipeline";
 * const dw = { node: "dw", op: "Conv", input: "x", weight: "W", shape: [16, 1, 3, 3], outAxis: 0,
 *   inAxis: 1, window: 9, groups: 16, out: 16, in: 9 };
 * if (!isDepthwiseConv(dw) || isDepthwiseConv({ ...dw, groups: 1, shape: [16, 16, 3, 3] })) {
 *   throw new Error();
 * }
 * ```
 */
export function isDepthwiseConv(l: Layer): boolean {
  return l.op === "Conv" && !l.part && l.groups > 1 && l.shape[1] === 1 &&
    l.out % l.groups === 0 && l.window >= 2 && (l.shape.length === 3 || l.shape.length === 4);
}

/**
 * The rounding of a weight whose spec leaves it open (`spec.rounding` undefined): `"gptq"` for a
 * depthwise conv's per-channel integer weight when calibration data is available, else `"rtn"`.
 * A spec that names its rounding keeps it.
 *
 * @param l the layer
 * @param spec the weight's spec
 * @param hasData whether calibration data is available (GPTQ needs the layer's inputs)
 * @returns the rounding to use
 *
 * @example
 * ```ts
 * import { defaultRounding } from "@lowbit/pipeline";
 * const dw = { node: "dw", op: "Conv", input: "x", weight: "W", shape: [16, 1, 3, 3], outAxis: 0,
 *   inAxis: 1, window: 9, groups: 16, out: 16, in: 9 };
 * const spec = { format: "int8", granularity: "channel" as const, mode: "symmetric" as const };
 * if (defaultRounding(dw, spec, true) !== "gptq") throw new Error();
 * if (defaultRounding(dw, spec, false) !== "rtn") throw new Error();
 * if (defaultRounding(dw, { ...spec, rounding: "rtn" }, true) !== "rtn") throw new Error();
 * ```
 */
export function defaultRounding(l: Layer, spec: TensorSpec, hasData: boolean): Rounding {
  if (spec.rounding) return spec.rounding;
  let integer = false;
  try {
    integer = getFormat(spec.format).family === "int";
  } catch {
    // An unknown format is reported by the plan's format check; round to nearest meanwhile.
  }
  return hasData && integer && spec.granularity === "channel" && isDepthwiseConv(l)
    ? "gptq"
    : "rtn";
}

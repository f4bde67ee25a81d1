/**
 * Mixed-precision candidates: a weight format with a granularity, written
 * `format/granularity` ("int4/channel", "int4/group:16", "fp8_e4m3fn/channel")
 * or just the format for block formats, whose blocks carry their own scales
 * ("mxfp4", "nvfp4"), optionally paired with the format of the layer's input
 * after an `@`: "int4/group:32@int8", "fp8_e4m3fn/channel@fp8_e4m3fn",
 * "int8/channel@none" (none: the input stays float). Without `@` the input is
 * int8, as in the `mixed` preset. Activations are quantized per tensor with a
 * min/max range: integer formats affine, minifloats symmetric.
 * Each resolves to the pipeline's {@link TensorSpec}s and, per layer, to the
 * cost model's {@link CandidateCost}.
 *
 * @module
 */

import { type BlockFormat, type CandidateCost, getFormat, LowbitError } from "@lowbit/core";
import type { Layer } from "../layers.ts";
import {
  formatGranularity,
  type GranularitySpec,
  parseGranularity,
  type TensorSpec,
} from "../spec.ts";
import { isBlockFormatName, resolveWeightGranularity } from "../tensor_quant.ts";

/** The candidates searched when none are given: integers and minifloats together (FLIQS). */
export const DEFAULT_CANDIDATES: readonly string[] = [
  "int8/channel",
  "fp8_e4m3fn/channel",
  "int6/channel",
  "fp6_e3m2fn/channel",
  "int5/channel",
  "int4/channel",
  "int4/group:16",
  "fp4_e2m1fn/channel",
  "mxfp4",
  "nvfp4",
  "int3/channel",
  "int2/channel",
];

/** The activation formats searched when none are given: int8 only (the `mixed` preset's). */
export const DEFAULT_ACT_FORMATS: readonly string[] = ["int8"];

/** A parsed candidate. */
export interface Candidate {
  /** Its name as written. */
  name: string;
  /** The weight part of the name (before any `@`). */
  weightName: string;
  /** The weight spec the pipeline applies. */
  spec: TensorSpec;
  /** Bits per weight element. */
  bits: number;
  /** The activation format name ("none" when the input stays float). */
  activationFormat: string;
  /** The activation spec the pipeline applies to the layer input (null: float). */
  activation: TensorSpec | null;
  /** Activation bits for BOPs (32 for "none"). */
  activationBits: number;
}

/**
 * Parses an activation format of a candidate: "none", or a registered
 * element format quantized per tensor (integers affine, minifloats symmetric,
 * min/max calibration).
 *
 * @param name e.g. "int8", "fp8_e4m3fn", "none"
 * @param where what to name in errors (e.g. the candidate)
 * @returns the spec, or null for "none"
 *
 * @example
 * ```ts
 * import { parseActivationFormat } from "@lowbit/pipeline/search";
 * const a = parseActivationFormat("fp8_e4m3fn");
 * if (a?.mode !== "symmetric" || parseActivationFormat("none") !== null) throw new Error();
 * ```
 */
export function parseActivationFormat(
  name: string,
  where = "activation format",
): TensorSpec | null {
  const n = name.trim();
  if (n === "none") return null;
  if (n === "") {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${where}: empty activation format (e.g. int8, fp8_e4m3fn, none)`,
    );
  }
  let fmt;
  try {
    fmt = getFormat(n);
  } catch (e) {
    throw new LowbitError(
      "UNKNOWN_NAME",
      `${where}: unknown activation format '${n}' (e.g. int8, fp8_e4m3fn, none): ${
        (e as Error).message
      }`,
    );
  }
  if (isBlockFormatName(n) || (fmt.family !== "int" && fmt.family !== "float")) {
    throw new LowbitError(
      "UNSUPPORTED",
      `${where}: activation format '${n}' cannot be searched; use an integer or minifloat format quantized per tensor (e.g. int8, fp8_e4m3fn) or none`,
    );
  }
  return {
    format: n,
    granularity: "tensor",
    mode: fmt.family === "int" ? "affine" : "symmetric",
    calibrator: "minmax",
  };
}

/**
 * Pairs weight candidates with activation formats: every weight candidate
 * without an `@` takes each activation format (`w@a`); with the default
 * activation set (int8 only) the names stay as written, so plans and
 * reports of weight-only searches do not change.
 *
 * @param weights candidate names, e.g. ["int8/channel", "int4/channel"]
 * @param activations activation formats, e.g. ["int8", "fp8_e4m3fn", "none"]
 * @returns the candidate names, weight-major
 *
 * @example
 * ```ts
 * import { pairCandidates } from "@lowbit/pipeline/search";
 * const c = pairCandidates(["int8/channel", "int4/channel"], ["int8", "none"]);
 * if (c.join() !== "int8/channel@int8,int8/channel@none,int4/channel@int8,int4/channel@none") throw new Error();
 * ```
 */
export function pairCandidates(
  weights: readonly string[],
  activations: readonly string[] = DEFAULT_ACT_FORMATS,
): string[] {
  if (activations.length === 0) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "no activation formats to search (e.g. int8,fp8_e4m3fn,none)",
    );
  }
  for (const a of activations) parseActivationFormat(a);
  const plain = activations.length === 1 && activations[0].trim() === "int8";
  const out: string[] = [];
  for (const w of weights) {
    if (plain || w.includes("@")) out.push(w);
    else for (const a of activations) out.push(`${w}@${a.trim()}`);
  }
  return [...new Set(out)];
}

/**
 * Parses a candidate name.
 *
 * @param name e.g. "int4/group:32", "fp8_e4m3fn/channel", "mxfp4", "int4/channel@none"
 * @returns the candidate
 *
 * @example
 * ```ts
 * import { parseCandidate } from "@lowbit/pipeline/search";
 * const c = parseCandidate("int4/group:32");
 * if (c.bits !== 4 || typeof c.spec.granularity !== "object" || c.activationFormat !== "int8") throw new Error();
 * const f = parseCandidate("int8/channel@none");
 * if (f.activation !== null || f.activationBits !== 32 || f.weightName !== "int8/channel") throw new Error();
 * ```
 */
export function parseCandidate(name: string): Candidate {
  const at = name.split("@");
  if (at.length > 2) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `candidate '${name}': one '@' at most (weight@activation, e.g. int4/channel@int8)`,
    );
  }
  const weightName = at[0];
  const actName = at.length === 2 ? at[1] : "int8";
  const activation = parseActivationFormat(actName, `candidate '${name}'`);
  const [format, gran] = weightName.split("/", 2);
  let fmt;
  try {
    fmt = getFormat(format);
  } catch (e) {
    throw new LowbitError(
      "UNKNOWN_NAME",
      `candidate '${name}': unknown weight format '${format}': ${(e as Error).message}`,
    );
  }
  const block = isBlockFormatName(format);
  let granularity: GranularitySpec;
  if (block) granularity = { group: (fmt as BlockFormat).blockSize };
  else if (gran === undefined) granularity = "channel";
  else {
    try {
      granularity = parseGranularity(gran);
    } catch (e) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `candidate '${name}': ${(e as Error).message}`,
      );
    }
  }
  const bits = block ? (fmt as BlockFormat).element.bits : fmt.bits;
  return {
    name,
    weightName,
    spec: { format, granularity, mode: "symmetric", rounding: "rtn" },
    bits,
    activationFormat: actName.trim(),
    activation,
    activationBits: activation ? getFormat(activation.format).bits : 32,
  };
}

/**
 * Normalised name of a spec, the inverse of {@link parseCandidate}.
 *
 * @param spec a weight spec
 * @returns "format/granularity", or the bare format for block formats
 *
 * @example
 * ```ts
 * import { candidateName } from "@lowbit/pipeline/search";
 * if (candidateName({ format: "int8", granularity: "channel", mode: "symmetric" }) !== "int8/channel") throw new Error();
 * ```
 */
export function candidateName(spec: TensorSpec): string {
  return isBlockFormatName(spec.format)
    ? spec.format
    : `${spec.format}/${formatGranularity(spec.granularity)}`;
}

/**
 * The cost-model view of a candidate on one layer (scales as the pipeline lays them out).
 *
 * @param layer the layer
 * @param c the candidate
 * @param activationBits activation bits for BOPs (default: the candidate's, 32 for float inputs)
 * @returns bits, granularity and scale overhead
 *
 * @example
 * ```ts
 * import { candidateCost, parseCandidate } from "@lowbit/pipeline/search";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [10, 32], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 10, in: 32 };
 * const c = candidateCost(fc, parseCandidate("mxfp4"), 8);
 * if (c.bits !== 4 || c.scaleBits !== 8 || c.granularity.kind !== "group") throw new Error();
 * ```
 */
export function candidateCost(
  layer: Layer,
  c: Candidate,
  activationBits: number = c.activationBits,
): CandidateCost {
  const fmt = getFormat(c.spec.format);
  if (isBlockFormatName(c.spec.format)) {
    const b = fmt as BlockFormat;
    return {
      bits: b.element.bits,
      granularity: { kind: "group", axis: 1, size: b.blockSize },
      scaleBits: b.scaleFormat.bits,
      // NOTE: NVFP4 adds a float32 per-tensor scale over its e4m3 block scales.
      tensorBits: b.scaleFormat.family === "float" && b.scaleFormat.bits === 8 ? 32 : 0,
      activationBits,
    };
  }
  const g = resolveWeightGranularity(layer, c.spec.granularity, c.spec.format);
  return {
    bits: c.bits,
    granularity: g.kind === "group" ? { kind: "group", axis: 1, size: g.size } : g,
    scaleBits: 32,
    activationBits,
  };
}

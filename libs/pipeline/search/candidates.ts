/**
 * Mixed-precision candidates: a weight format with a granularity, written
 * `format/granularity` ("int4/channel", "int4/group:16", "fp8_e4m3fn/channel")
 * or just the format for block formats, whose blocks carry their own scales
 * ("mxfp4", "nvfp4"). Each resolves to the pipeline's {@link TensorSpec} and,
 * per layer, to the cost model's {@link CandidateCost}.
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

/** A parsed candidate. */
export interface Candidate {
  /** Its name as written. */
  name: string;
  /** The weight spec the pipeline applies. */
  spec: TensorSpec;
  /** Bits per element. */
  bits: number;
}

/**
 * Parses a candidate name.
 *
 * @param name e.g. "int4/group:32", "fp8_e4m3fn/channel", "mxfp4"
 * @returns the candidate
 *
 * @example
 * ```ts
 * import { parseCandidate } from "@lowbit/pipeline/search";
 * const c = parseCandidate("int4/group:32");
 * if (c.bits !== 4 || typeof c.spec.granularity !== "object") throw new Error();
 * ```
 */
export function parseCandidate(name: string): Candidate {
  const [format, gran] = name.split("/", 2);
  let fmt;
  try {
    fmt = getFormat(format);
  } catch (e) {
    throw new LowbitError("UNKNOWN_NAME", `candidate '${name}': ${(e as Error).message}`);
  }
  const block = isBlockFormatName(format);
  let granularity: GranularitySpec;
  if (block) granularity = { group: (fmt as BlockFormat).blockSize };
  else if (gran === undefined) granularity = "channel";
  else granularity = parseGranularity(gran);
  const bits = block ? (fmt as BlockFormat).element.bits : fmt.bits;
  return { name, spec: { format, granularity, mode: "symmetric", rounding: "rtn" }, bits };
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
 * @param activationBits activation bits for BOPs (8 for the mixed preset's int8 activations)
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
export function candidateCost(layer: Layer, c: Candidate, activationBits: number): CandidateCost {
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

// Private helpers shared by the quantizers: axis normalisation, the block
// layout that maps an element to its scale, and input validation.

import { LowbitError } from "../errors.ts";
import type { Granularity } from "../types.ts";

/** Float32 machine epsilon (2^-23): the smallest scale `chooseQParams` returns. */
export const SCALE_EPS = 1.1920928955078125e-7;

/**
 * Element `i = (o * dim + d) * inner + r` uses scale
 * `k = o * oStride + floor(d / group) * dStride + r * rStride`.
 */
export interface Layout {
  outer: number;
  dim: number;
  inner: number;
  group: number;
  oStride: number;
  dStride: number;
  rStride: number;
  /** Number of scales. */
  count: number;
}

/** Resolves a possibly negative axis against a rank; out of range is an error. */
export function normalizeAxis(axis: number, rank: number, tensorName?: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `axis ${axis} is out of range for a tensor of rank ${rank} (valid: ${-rank}..${rank - 1})`,
      tensorName === undefined ? {} : { tensor: tensorName },
    );
  }
  return axis < 0 ? axis + rank : axis;
}

/** The scale layout of `shape` under `granularity`; checks axis and group size. */
export function layoutOf(
  shape: readonly number[],
  granularity: Granularity,
  tensorName?: string,
): Layout {
  const subject = tensorName === undefined ? {} : { tensor: tensorName };
  const numel = shape.reduce((a, b) => a * b, 1);
  // Block and row granularities keep one (unit) scale here: their real scales live in the
  // parameters' `extra` (block scale codes) or are computed at run time (rows).
  if (granularity.kind === "tensor" || granularity.kind === "block" || granularity.kind === "row") {
    return {
      outer: 1,
      dim: numel,
      inner: 1,
      group: 1,
      oStride: 0,
      dStride: 0,
      rStride: 0,
      count: 1,
    };
  }
  if (shape.length === 0) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `per-${granularity.kind} granularity needs a tensor of rank >= 1, got a scalar`,
      subject,
    );
  }
  const axis = normalizeAxis(granularity.axis, shape.length, tensorName);
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  const dim = shape[axis];
  if (granularity.kind === "channel") {
    return { outer, dim, inner, group: 1, oStride: 0, dStride: 1, rStride: 0, count: dim };
  }
  const g = granularity.size;
  if (!Number.isInteger(g) || g < 1) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `group size must be a positive integer, got ${g}`,
      subject,
    );
  }
  if (dim % g !== 0) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `group size ${g} does not divide axis ${axis} of length ${dim} (shape [${shape}])`,
      subject,
    );
  }
  const groups = dim / g;
  return {
    outer,
    dim,
    inner,
    group: g,
    oStride: groups * inner,
    dStride: inner,
    rStride: 1,
    count: outer * groups * inner,
  };
}

/** Throws INVALID_TENSOR at the first NaN or ±Inf. */
export function checkFinite(data: Float32Array, tensorName?: string): void {
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (x - x !== 0) {
      throw new LowbitError(
        "INVALID_TENSOR",
        `contains ${x} at flat index ${i}; quantization needs finite values ` +
          `(replace or mask non-finite values first)`,
        tensorName === undefined ? {} : { tensor: tensorName },
      );
    }
  }
}

export { roundHalfEven as rne } from "./round.ts";

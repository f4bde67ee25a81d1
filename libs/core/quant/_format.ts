// Private: format lookup and classification for the quantizers.

import { getFormat } from "../default_registry.ts";
import { LowbitError } from "../errors.ts";
import type { BlockFormat, NumberFormat } from "../types.ts";

/** Looks a format up by name (unknown names list the registered ones). */
export function resolveFormat(format: string | NumberFormat): NumberFormat {
  return typeof format === "string" ? getFormat(format) : format;
}

/**
 * Whether the format is a plain integer grid (step 1), quantized via scale and
 * zero point. Fixed-point integer formats (MXINT8's elements) are treated like
 * float grids: scale, then the format's own encoder.
 */
export function isIntFormat(fmt: NumberFormat): boolean {
  return fmt.family === "int" && fmt.minNormal === 1 && Number.isInteger(fmt.min) &&
    Number.isInteger(fmt.max);
}

/** Whether the format carries its own per-block scales. */
export function isBlockFormat(fmt: NumberFormat): fmt is BlockFormat {
  return fmt.family === "block" &&
    typeof (fmt as Partial<BlockFormat>).encodeBlocks === "function";
}

/** `[quantMin, quantMax]` of an integer format, checked to be integers. */
export function intBounds(fmt: NumberFormat): [number, number] {
  const lo = fmt.min, hi = fmt.max;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo >= hi) {
    throw new LowbitError(
      "INTERNAL",
      `integer format '${fmt.name}' has a non-integer range [${lo}, ${hi}]`,
    );
  }
  return [lo, hi];
}

/**
 * The clamp range of an integer format: `[quantMin, quantMax]` when given
 * (they must be integers inside the format's range), else the format's.
 */
export function quantBounds(
  fmt: NumberFormat,
  quantMin: number | undefined,
  quantMax: number | undefined,
  tensorName?: string,
): [number, number] {
  const [lo, hi] = intBounds(fmt);
  if (quantMin === undefined && quantMax === undefined) return [lo, hi];
  const qmin = quantMin ?? lo, qmax = quantMax ?? hi;
  if (
    !Number.isInteger(qmin) || !Number.isInteger(qmax) || qmin < lo || qmax > hi || qmin >= qmax
  ) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `quantMin ${qmin} / quantMax ${qmax} must be integers with ${lo} <= quantMin < quantMax <= ` +
        `${hi} for format '${fmt.name}'`,
      tensorName === undefined ? {} : { tensor: tensorName },
    );
  }
  return [qmin, qmax];
}

/** The element grid a scale maps onto: the element format for block formats. */
export function gridFormat(fmt: NumberFormat): NumberFormat {
  return isBlockFormat(fmt) ? fmt.element : fmt;
}

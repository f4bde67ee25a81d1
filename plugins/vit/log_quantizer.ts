/**
 * Logarithmic quantizers for attention probabilities and GELU outputs: values on the grid
 * `scale · base^−k` (k = 0, 1, …) plus 0. `log2` (FQ-ViT) fixes the base at 2, `logsqrt2`
 * (RepQ-ViT) at √2, and `adalog` (AdaLog) keeps a base searched per tensor (by the plugin's fit
 * stage) in `extra.base`.
 *
 * Unsigned tensors (a calibrated minimum ≥ 0: Softmax outputs) use every code: 2^bits − 1
 * levels and 0. Signed tensors (GELU outputs) use sign and magnitude: 2^(bits−1) − 1 levels per
 * sign and 0. A value is rounded in the log domain (to the level whose exponent is nearest), and
 * below the smallest level to that level or 0, whichever is nearer. Codes: 0 is zero, k + 1 the
 * level k, bit `bits − 1` the sign of a signed grid.
 *
 * @module
 */

import {
  type Codes,
  type FitOptions,
  LowbitError,
  type QParams,
  type Quantizer,
  type Range,
  type Registry,
  type Tensor,
} from "@lowbit/core";

/** The fitted grid of a log quantizer. */
export interface LogGrid {
  /** The largest level (the calibrated maximum magnitude). */
  readonly scale: number;
  /** The ratio between consecutive levels (> 1). */
  readonly base: number;
  /** Number of nonzero levels (per sign). */
  readonly levels: number;
  /** Whether negative values have levels (sign and magnitude). */
  readonly signed: boolean;
}

/**
 * The levels of a log grid, largest first: `scale · base^−k`, k = 0 … levels − 1 (float32).
 *
 * @param g the grid
 * @returns the nonzero magnitudes
 *
 * @example
 * ```ts
 * import { logLevels } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * assert.deepEqual([...logLevels({ scale: 1, base: 2, levels: 4, signed: false })], [1, 0.5, 0.25, 0.125]);
 * ```
 */
export function logLevels(g: LogGrid): Float32Array {
  return Float32Array.from({ length: g.levels }, (_, k) => g.scale * g.base ** -k);
}

/** Codes of `x` on the grid: nearest exponent; below the smallest level, it or 0. */
function encodeLog(x: Float32Array, g: LogGrid): Uint8Array {
  const lv = logLevels(g);
  // Rounding thresholds in the log domain: between level k and k+1 at scale·base^−(k+½).
  const th = Float64Array.from({ length: g.levels }, (_, k) => g.scale * g.base ** -(k + 0.5));
  const last = lv[g.levels - 1] / 2;
  const signBit = g.signed ? highBit(g.levels) : 0;
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!(v === v)) throw nanError();
    if (v < 0 && !g.signed) continue; // an unsigned grid: negatives become 0
    const a = Math.abs(v);
    let k = 0;
    while (k < g.levels - 1 && a < th[k]) k++;
    let c = k + 1;
    if (k === g.levels - 1 && a < last) c = 0;
    out[i] = c === 0 ? 0 : c | (v < 0 ? signBit : 0);
  }
  return out;
}

/** The sign bit of a signed grid with `levels` magnitudes: the power of two above levels. */
function highBit(levels: number): number {
  let b = 1;
  while (b <= levels) b <<= 1;
  return b;
}

function decodeLog(c: Codes, g: LogGrid): Float32Array {
  const lv = logLevels(g);
  const signBit = g.signed ? highBit(g.levels) : 0;
  const out = new Float32Array(c.length);
  for (let i = 0; i < c.length; i++) {
    const code = c[i], mag = signBit ? code & (signBit - 1) : code;
    if (mag === 0) continue;
    out[i] = code & signBit ? -lv[mag - 1] : lv[mag - 1];
  }
  return out;
}

function nanError(): LowbitError {
  return new LowbitError("INVALID_TENSOR", "a log quantizer was given NaN");
}

/**
 * The grid of fitted parameters (`scale[0]`, `extra.base`, `extra.signed`, the format's bits).
 *
 * @param qp fitted parameters
 * @param bits the format's bits
 * @returns the grid
 *
 * @example
 * ```ts
 * import { logGridOf } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const qp = { format: "int4", granularity: { kind: "tensor" as const }, mode: "symmetric" as const,
 *   scale: Float32Array.of(1), zeroPoint: Int32Array.of(0), extra: { base: [2], signed: [1] } };
 * assert.deepEqual(logGridOf(qp, 4), { scale: 1, base: 2, levels: 7, signed: true });
 * ```
 */
export function logGridOf(qp: QParams, bits: number): LogGrid {
  const base = qp.extra?.base?.[0];
  if (base === undefined || !(base > 1)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `a log quantizer needs extra.base > 1, got ${JSON.stringify(qp.extra?.base)}`,
    );
  }
  const signed = (qp.extra?.signed?.[0] ?? 0) !== 0;
  const levels = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  return { scale: qp.scale[0], base, levels, signed };
}

/**
 * Fake-quantizes values on a log grid (quantize, then dequantize).
 *
 * @param x values
 * @param g the grid
 * @returns values on the grid
 *
 * @example
 * ```ts
 * import { logFakeQuant } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * // 2^−1.5 ≈ 0.354 is the log-domain midpoint between 0.5 and 0.25
 * const y = logFakeQuant(Float32Array.of(0.36, 0.3, 0.01), { scale: 1, base: 2, levels: 3, signed: false });
 * assert.deepEqual([...y], [0.5, 0.25, 0]);
 * ```
 */
export function logFakeQuant(x: Float32Array, g: LogGrid): Float32Array {
  return decodeLog(encodeLog(x, g), g);
}

/**
 * The fixed base of each log quantizer (float32, as the plan and the lowbit file keep it);
 * `adalog`'s default before its search.
 */
export const LOG_BASES: Readonly<Record<"log2" | "logsqrt2" | "adalog", number>> = {
  log2: 2,
  logsqrt2: Math.fround(Math.SQRT2),
  adalog: 2,
};

/**
 * A log quantizer: `log2`, `logsqrt2` or `adalog` (the base in `extra.base`; fitted as 2 from a
 * range, then searched by the plugin's fit stage).
 *
 * @param name which one
 * @param registry where formats are resolved
 * @returns the quantizer
 *
 * @example
 * ```ts
 * import { createRegistry, registerBuiltins, tensor } from "@lowbit/core";
 * import { logQuantizer } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const r = createRegistry();
 * registerBuiltins(r);
 * const q = logQuantizer("logsqrt2", r);
 * const qp = q.fit({ min: Float32Array.of(0), max: Float32Array.of(1) },
 *   { format: "uint4", granularity: { kind: "tensor" }, mode: "affine" });
 * // −log_√2(0.3) = 3.47: the level (√2)^−3
 * assert.equal(q.fakeQuant(tensor(Float32Array.of(0.3), [1]), qp).data[0], Math.fround(Math.fround(Math.SQRT2) ** -3));
 * ```
 */
export function logQuantizer(name: "log2" | "logsqrt2" | "adalog", registry: Registry): Quantizer {
  const bitsOf = (format: string): number => registry.formats.get(format).bits;
  const grid = (qp: QParams): LogGrid => {
    const g = logGridOf(qp, bitsOf(qp.format));
    if (name !== "adalog" && g.base !== LOG_BASES[name]) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `${name} has base ${LOG_BASES[name]}, the parameters say ${g.base}`,
      );
    }
    return g;
  };
  const self: Quantizer = {
    name,
    supports: (f) => f.family === "int" && f.bits >= 2 && f.bits <= 8,
    fit(input: Range | Tensor, opts: FitOptions): QParams {
      let lo = 0, hi = 0;
      if ("min" in input && "max" in input) lo = input.min[0], hi = input.max[0];
      else for (const v of input.data) lo = Math.min(lo, v), hi = Math.max(hi, v);
      const signed = lo < 0;
      const top = Math.max(hi, signed ? -lo : 0);
      return {
        format: opts.format,
        granularity: { kind: "tensor" },
        mode: "symmetric",
        scale: Float32Array.of(top > 0 ? top : 1),
        zeroPoint: Int32Array.of(0),
        extra: { base: [LOG_BASES[name]], signed: [signed ? 1 : 0] },
      };
    },
    quantize: (t: Tensor, qp: QParams): Codes => encodeLog(t.data, grid(qp)),
    dequantize: (c: Codes, qp: QParams, shape: readonly number[]): Tensor => ({
      shape: [...shape],
      data: decodeLog(c, grid(qp)),
    }),
    fakeQuant: (t: Tensor, qp: QParams): Tensor => ({
      shape: [...t.shape],
      data: logFakeQuant(t.data, grid(qp)),
    }),
  };
  return self;
}

/**
 * PTQ4ViT's twin-uniform quantizer: two uniform ranges, one code bit choosing between them.
 *
 * - Unsigned tensors (Softmax outputs): R1 = [0, 2^(b−1)·Δ1) with the small step Δ1 for the
 *   many small probabilities, R2 = [0, (2^(b−1) − 1)·Δ2] with the large step Δ2 for the few
 *   large ones; a value inside R1 uses R1.
 * - Signed tensors (GELU outputs): R1 holds the negative values with step Δ1, R2 the positive
 *   ones with step Δ2, each on 2^(b−1) − 1 levels and 0.
 *
 * Parameters: `scale[0]` = Δ2 and `extra = { d1: [Δ1], signed: [0|1] }` (plus an optional noisy
 * bias, `extra.noise`). Fitted from a range: Δ2 covers the maximum; unsigned, Δ1 = Δ2 / 2^4,
 * signed, Δ1 covers the minimum. The plugin's fit stage then searches Δ1 (unsigned) or Δ2
 * (signed) on calibration data. Codes: bit b−1 selects R2 (unsigned) or the negative side
 * (signed), the low bits hold the level.
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
import { withNoise } from "./noise.ts";

/** A twin-uniform grid. */
export interface TwinGrid {
  /** Step of the first range (small values, or the negative side). */
  readonly d1: number;
  /** Step of the second range (large values, or the positive side). */
  readonly d2: number;
  /** Code bits. */
  readonly bits: number;
  /** Negative / positive ranges (signed) or small / large (unsigned). */
  readonly signed: boolean;
}

/** Ties to even, as the core's integer rounding. */
function rint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function encodeTwin(x: Float32Array, g: TwinGrid): Uint8Array {
  const half = 2 ** (g.bits - 1), top = half - 1;
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!(v === v)) throw new LowbitError("INVALID_TENSOR", "twin-uniform was given NaN");
    if (g.signed) {
      out[i] = v < 0 ? half | Math.min(top, rint(-v / g.d1)) : Math.min(top, rint(v / g.d2));
    } else if (v < half * g.d1) {
      out[i] = Math.max(0, Math.min(top, rint(v / g.d1)));
    } else {
      out[i] = half | Math.min(top, rint(v / g.d2));
    }
  }
  return out;
}

function decodeTwin(c: Codes, g: TwinGrid): Float32Array {
  const half = 2 ** (g.bits - 1);
  return Float32Array.from(c, (code) => {
    const m = code & (half - 1), hi = (code & half) !== 0;
    if (g.signed) return hi ? -m * g.d1 : m * g.d2;
    return hi ? m * g.d2 : m * g.d1;
  });
}

/**
 * Fake-quantizes values on a twin-uniform grid.
 *
 * @param x values
 * @param g the grid
 * @returns values on the grid
 *
 * @example
 * ```ts
 * import { twinFakeQuant } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * // 4 bits unsigned: R1 = 0..7 · 1/64 (below 8/64), R2 = 0..7 · 1/8
 * const y = twinFakeQuant(Float32Array.of(0.05, 0.2, 0.99), { d1: 1 / 64, d2: 1 / 8, bits: 4, signed: false });
 * assert.deepEqual([...y], [3 / 64, 0.25, 0.875]);
 * ```
 */
export function twinFakeQuant(x: Float32Array, g: TwinGrid): Float32Array {
  return decodeTwin(encodeTwin(x, g), g);
}

/**
 * The grid of fitted parameters.
 *
 * @param qp fitted parameters (`scale[0]` = Δ2, `extra.d1`, `extra.signed`)
 * @param bits the format's bits
 * @returns the grid
 *
 * @example
 * ```ts
 * import { twinGridOf } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const qp = { format: "int4", granularity: { kind: "tensor" as const }, mode: "symmetric" as const,
 *   scale: Float32Array.of(0.5), zeroPoint: Int32Array.of(0), extra: { d1: [0.25], signed: [0] } };
 * assert.deepEqual(twinGridOf(qp, 4), { d1: 0.25, d2: 0.5, bits: 4, signed: false });
 * ```
 */
export function twinGridOf(qp: QParams, bits: number): TwinGrid {
  const d1 = qp.extra?.d1?.[0], d2 = qp.scale[0];
  if (d1 === undefined || !(d1 > 0) || !(d2 > 0)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `twin-uniform needs steps > 0 (scale and extra.d1), got ${d2} and ${d1}`,
    );
  }
  return { d1, d2, bits, signed: (qp.extra?.signed?.[0] ?? 0) !== 0 };
}

/**
 * The `twin-uniform` quantizer (see the module doc).
 *
 * @param registry where formats are resolved
 * @returns the quantizer
 *
 * @example
 * ```ts
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * import { twinUniform } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const r = createRegistry();
 * registerBuiltins(r);
 * const qp = twinUniform(r).fit({ min: Float32Array.of(-0.14), max: Float32Array.of(7) },
 *   { format: "int4", granularity: { kind: "tensor" }, mode: "affine" });
 * assert.deepEqual([qp.scale[0], qp.extra!.d1[0]], [1, Math.fround(0.02)]);
 * ```
 */
export function twinUniform(registry: Registry): Quantizer {
  const grid = (qp: QParams) => twinGridOf(qp, registry.formats.get(qp.format).bits);
  return {
    name: "twin-uniform",
    supports: (f) => f.family === "int" && f.bits >= 2 && f.bits <= 8,
    fit(input: Range | Tensor, opts: FitOptions): QParams {
      let lo = 0, hi = 0;
      if ("min" in input && "max" in input) lo = input.min[0], hi = input.max[0];
      else for (const v of input.data) lo = Math.min(lo, v), hi = Math.max(hi, v);
      const top = 2 ** (registry.formats.get(opts.format).bits - 1) - 1;
      const signed = lo < 0;
      const d2 = Math.fround(hi > 0 ? hi / top : 1);
      const d1 = Math.fround(signed ? -lo / top : d2 / 16);
      return {
        format: opts.format,
        granularity: { kind: "tensor" },
        mode: "symmetric",
        scale: Float32Array.of(d2),
        zeroPoint: Int32Array.of(0),
        extra: { d1: [d1], signed: [signed ? 1 : 0] },
      };
    },
    quantize: (t: Tensor, qp: QParams): Codes => encodeTwin(t.data, grid(qp)),
    dequantize: (c: Codes, qp: QParams, shape: readonly number[]): Tensor => ({
      shape: [...shape],
      data: decodeTwin(c, grid(qp)),
    }),
    fakeQuant: (t: Tensor, qp: QParams): Tensor =>
      withNoise(t, qp.extra, (x) => twinFakeQuant(x, grid(qp))),
  };
}

/**
 * Choosing quantization parameters (scale, zero point) from an observed range,
 * after torchao's `choose_qparams_affine`.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { Granularity, NumberFormat, QParams, QuantMode, Range } from "../types.ts";
import { checkFinite, layoutOf, rne, SCALE_EPS } from "./_layout.ts";
import { gridFormat, isBlockFormat, isIntFormat, quantBounds, resolveFormat } from "./_format.ts";

/** Options of {@link chooseQParams} and {@link fitQParams}. */
export interface ChooseQParamsOptions {
  /** Target format: a registry name ("int8", "uint4", "fp8_e4m3fn", "mxfp4", ...) or the format. */
  format: string | NumberFormat;
  /** Granularity the range was observed at (per-tensor, per-channel, per-group). */
  granularity: Granularity;
  /** "symmetric" (default) or "affine" (integer formats only). */
  mode?: QuantMode;
  /** Round every scale up to a power of two (the zero point is refitted to it). */
  powerOfTwo?: boolean;
  /**
   * Integer formats: clamp to a narrower code range than the format's, e.g.
   * `quantMin: -127` for restricted-range symmetric int8 (scale `amax / 127`).
   * Recorded in the returned parameters.
   */
  quantMin?: number;
  /** Integer formats: the largest code (defaults to `format.max`). */
  quantMax?: number;
  /** Tensor name for error messages. */
  name?: string;
}

/**
 * Chooses one scale and zero point per range entry, in float32 as torchao and
 * torch's observers do (bit-exact against `MinMaxObserver` /
 * `PerChannelMinMaxObserver`).
 *
 * - Integer formats, `quantMin = format.min`, `quantMax = format.max` unless
 *   given narrower:
 *   - symmetric: `scale = amax / ((quantMax - quantMin) / 2)` with
 *     `amax = max(|min|, |max|)`, `zeroPoint = floor((quantMin + quantMax + 1) / 2)`
 *     (0 for signed, 128 for uint8);
 *   - affine: `scale = (max(max, 0) - min(min, 0)) / (quantMax - quantMin)` (the
 *     difference rounded to float32 first, as torch does),
 *     `zeroPoint = clamp(quantMin - roundHalfEven(min(min, 0) / scale), quantMin, quantMax)`.
 * - Float, minifloat, ternary, binary and non-uniform formats (symmetric only):
 *   `scale = amax / format.max`, zero point 0.
 * - Block formats (MX, NVFP4) carry their own per-block scales: `scale = 1`.
 *
 * A zero range (all values 0, or `min = max = 0`) gives `scale = 2^-23` (float32
 * epsilon), the floor every scale is clamped to, so quantization stays defined
 * and 0 stays exact. A constant non-zero tensor `c` gets the scale of the range
 * `[min(c, 0), max(c, 0)]`, so `c` itself is (nearly) exact.
 *
 * @param range per-scale minimum and maximum (length 1 per-tensor)
 * @param opts format, granularity, mode, power-of-two
 * @returns the parameters
 *
 * @example
 * ```ts
 * import { chooseQParams } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const qp = chooseQParams(
 *   { min: new Float32Array([-1]), max: new Float32Array([2]) },
 *   { format: "uint8", granularity: { kind: "tensor" }, mode: "affine" },
 * );
 * assert.equal(qp.scale[0], Math.fround(3 / 255));
 * assert.equal(qp.zeroPoint[0], 85);
 * ```
 */
export function chooseQParams(range: Range, opts: ChooseQParamsOptions): QParams {
  const subject = opts.name === undefined ? {} : { tensor: opts.name };
  const fmt = resolveFormat(opts.format);
  const mode: QuantMode = opts.mode ?? "symmetric";
  if (mode !== "symmetric" && mode !== "affine") {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `mode must be "symmetric" or "affine", got ${JSON.stringify(mode)}`,
      subject,
    );
  }
  const n = range.min.length;
  if (range.max.length !== n || n === 0) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `range needs equally long, non-empty min and max (got ${n} and ${range.max.length})`,
      subject,
    );
  }
  for (let k = 0; k < n; k++) {
    const lo = range.min[k], hi = range.max[k];
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `range entry ${k} is [${lo}, ${hi}]; it must be finite with min <= max`,
        subject,
      );
    }
  }
  const scale = new Float32Array(n);
  const zeroPoint = new Int32Array(n);
  const isInt = isIntFormat(fmt);
  if (!isInt && (opts.quantMin !== undefined || opts.quantMax !== undefined)) {
    throw new LowbitError(
      "UNSUPPORTED",
      `quantMin / quantMax apply to integer formats; '${fmt.name}' is ${fmt.family}`,
      subject,
    );
  }
  if (mode === "affine" && !isInt) {
    throw new LowbitError(
      "UNSUPPORTED",
      `affine mode needs an integer format; '${fmt.name}' is ${fmt.family} (use "symmetric")`,
      subject,
    );
  }
  if (isInt) {
    const [qmin, qmax] = quantBounds(fmt, opts.quantMin, opts.quantMax, opts.name);
    for (let k = 0; k < n; k++) {
      const lo = Math.min(range.min[k], 0), hi = Math.max(range.max[k], 0);
      if (mode === "symmetric") {
        const amax = Math.max(-lo, hi);
        let s = Math.max(Math.fround(amax / ((qmax - qmin) / 2)), SCALE_EPS);
        if (opts.powerOfTwo) s = pow2Ceil(s);
        scale[k] = s;
        zeroPoint[k] = Math.floor((qmin + qmax + 1) / 2);
      } else {
        // float32 like torch: (max - min) rounds before the division
        let s = Math.max(Math.fround(Math.fround(hi - lo) / (qmax - qmin)), SCALE_EPS);
        if (opts.powerOfTwo) s = pow2Ceil(s);
        scale[k] = s;
        const zp = qmin - rne(Math.fround(lo / s));
        zeroPoint[k] = Math.min(Math.max(zp, qmin), qmax);
      }
    }
  } else if (isBlockFormat(fmt)) {
    scale.fill(1);
  } else {
    const gmax = gridFormat(fmt).max;
    for (let k = 0; k < n; k++) {
      const amax = Math.max(-range.min[k], range.max[k], 0);
      let s = Math.max(Math.fround(amax / gmax), SCALE_EPS);
      if (opts.powerOfTwo) s = pow2Ceil(s);
      scale[k] = s;
    }
  }
  const qp: QParams = { format: fmt.name, granularity: opts.granularity, mode, scale, zeroPoint };
  if (opts.quantMin !== undefined) qp.quantMin = opts.quantMin;
  if (opts.quantMax !== undefined) qp.quantMax = opts.quantMax;
  return qp;
}

/**
 * The minimum and maximum of a tensor per tensor / channel / group, in the
 * order of the scales (row-major over the shape with the axis divided by the
 * group size). NaN or ±Inf, an empty tensor, an axis out of range or a group
 * size that does not divide the axis are `LowbitError`s.
 *
 * @param t the tensor
 * @param granularity per-tensor, per-channel or per-group
 * @param name tensor name for error messages
 * @returns the range, one entry per scale
 *
 * @example
 * ```ts
 * import { rangeOf, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const r = rangeOf(tensor(new Float32Array([1, -2, 3, 4]), [2, 2]), { kind: "channel", axis: 0 });
 * assert.deepEqual([...r.min], [-2, 3]);
 * assert.deepEqual([...r.max], [1, 4]);
 * ```
 */
export function rangeOf(t: Tensor, granularity: Granularity, name?: string): Range {
  if (t.data.length === 0) {
    throw new LowbitError(
      "INVALID_TENSOR",
      `is empty (shape [${t.shape}]); there is no range to fit`,
      name === undefined ? {} : { tensor: name },
    );
  }
  checkFinite(t.data, name);
  const L = layoutOf(t.shape, granularity, name);
  const min = new Float32Array(L.count).fill(Infinity);
  const max = new Float32Array(L.count).fill(-Infinity);
  const x = t.data;
  let i = 0;
  for (let o = 0; o < L.outer; o++) {
    for (let d = 0; d < L.dim; d++) {
      const base = o * L.oStride + Math.floor(d / L.group) * L.dStride;
      for (let r = 0; r < L.inner; r++, i++) {
        const k = base + r * L.rStride;
        const v = x[i];
        if (v < min[k]) min[k] = v;
        if (v > max[k]) max[k] = v;
      }
    }
  }
  return { min, max };
}

/**
 * Fits quantization parameters to a tensor (typically a weight): its range
 * per tensor / channel / group, then {@link chooseQParams}.
 *
 * @param t the tensor
 * @param opts format, granularity, mode, power-of-two, name
 * @returns the parameters
 *
 * @example
 * ```ts
 * import { fitQParams, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const w = tensor(new Float32Array([0.5, -1, 2, 0.25, 1, -4, 3, 8]), [2, 4]);
 * const qp = fitQParams(w, { format: "int4", granularity: { kind: "group", axis: 1, size: 2 } });
 * assert.equal(qp.scale.length, 4); // 2 rows x 2 groups
 * assert.equal(qp.scale[0], Math.fround(1 / 7.5));
 * ```
 */
export function fitQParams(t: Tensor, opts: ChooseQParamsOptions): QParams {
  return chooseQParams(rangeOf(t, opts.granularity, opts.name), opts);
}

/** Smallest power of two >= s (s > 0). */
function pow2Ceil(s: number): number {
  let p = 2 ** Math.ceil(Math.log2(s));
  while (p < s) p *= 2;
  while (p / 2 >= s) p /= 2;
  return p;
}

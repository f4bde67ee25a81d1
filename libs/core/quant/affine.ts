/**
 * Quantize, dequantize and fake-quantize a tensor under fitted parameters, for
 * any format, with torch's integer semantics.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { Codes, NumberFormat, QParams } from "../types.ts";
import { checkFinite, type Layout, layoutOf, rne } from "./_layout.ts";
import { intBounds, isBlockFormat, isIntFormat, resolveFormat } from "./_format.ts";

/**
 * Quantizes a tensor to one code per element.
 *
 * Integer formats follow torch (`fake_quantize_per_channel_affine`,
 * `quantize_per_channel`) exactly: `q = clamp(roundHalfEven(x * (1 / scale)) +
 * zeroPoint, quantMin, quantMax)` where `1 / scale` and the product are float32
 * operations; the integer `q` is then encoded by the format. Other element
 * formats divide by the scale in float32, clamp to `[format.min, format.max]`
 * and use the format's own round-to-nearest-even `encode`. Block formats (MX,
 * NVFP4) produce per-block scales that codes alone cannot carry: use
 * {@link fakeQuantize}, or the format's `encodeBlocks` on `x / scale`.
 *
 * NaN or ±Inf in `t` is a `LowbitError` (`INVALID_TENSOR`) naming the first
 * offending index; an empty tensor gives empty codes.
 *
 * @param t the tensor
 * @param qp parameters from `chooseQParams` / `fitQParams`
 * @param name tensor name for error messages
 * @returns the codes, row-major like `t`
 *
 * @example
 * ```ts
 * import { decodeCodes, quantizeAffine, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const qp = {
 *   format: "int8", granularity: { kind: "tensor" } as const, mode: "symmetric" as const,
 *   scale: new Float32Array([0.5]), zeroPoint: new Int32Array([0]),
 * };
 * const codes = quantizeAffine(tensor(new Float32Array([0.25, 0.75, -100]), [3]), qp);
 * assert.deepEqual([...decodeCodes(codes, "int8")], [0, 2, -128]); // ties to even, clamped
 * ```
 */
export function quantizeAffine(t: Tensor, qp: QParams, name?: string): Codes {
  const fmt = resolveFormat(qp.format);
  const L = checkParams(t.shape, t.data.length, qp, name);
  checkFinite(t.data, name);
  if (isBlockFormat(fmt)) {
    throw new LowbitError(
      "UNSUPPORTED",
      `codes of block format '${fmt.name}' need their per-block scales: use fakeQuantize(), ` +
        `or the format's encodeBlocks() on x / scale`,
      name === undefined ? {} : { tensor: name },
    );
  }
  if (isIntFormat(fmt)) return fmt.encode(intQuant(t.data, qp, L, fmt, false));
  return fmt.encode(floatScale(t.data, qp, L, fmt));
}

/**
 * Dequantizes codes: integer formats `(q - zeroPoint) * scale`, other formats
 * `decode(code) * scale`, both in float32.
 *
 * @param codes codes from {@link quantizeAffine}
 * @param qp the parameters they were made with
 * @param shape the tensor's shape
 * @param name tensor name for error messages
 * @returns the dequantized tensor
 *
 * @example
 * ```ts
 * import { dequantizeAffine, encodeValues } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const qp = {
 *   format: "uint8", granularity: { kind: "channel", axis: 0 } as const, mode: "affine" as const,
 *   scale: new Float32Array([0.5, 2]), zeroPoint: new Int32Array([10, 0]),
 * };
 * const t = dequantizeAffine(encodeValues(new Float32Array([12, 3]), "uint8"), qp, [2]);
 * assert.deepEqual([...t.data], [1, 6]);
 * ```
 */
export function dequantizeAffine(
  codes: Codes,
  qp: QParams,
  shape: readonly number[],
  name?: string,
): Tensor {
  const fmt = resolveFormat(qp.format);
  const L = checkParams(shape, codes.length, qp, name);
  if (isBlockFormat(fmt)) {
    throw new LowbitError(
      "UNSUPPORTED",
      `codes of block format '${fmt.name}' need their per-block scales: use the format's ` +
        `decodeBlocks()`,
      name === undefined ? {} : { tensor: name },
    );
  }
  const v = fmt.decode(codes);
  const out = new Float32Array(v.length);
  const zpUsed = isIntFormat(fmt);
  forEachScale(L, (i, k) => {
    const z = zpUsed ? qp.zeroPoint[k] : 0;
    out[i] = Math.fround((v[i] - z) * qp.scale[k]);
  });
  return { shape: [...shape], data: out };
}

/**
 * Fake-quantizes: quantizes and dequantizes in one step, returning floats on
 * the format's (scaled) grid. Integer formats equal torch's
 * `fake_quantize_per_channel_affine` / `fake_quantize_per_tensor_affine` bit for
 * bit. Block formats apply `x / scale`, then the format's `encodeBlocks` /
 * `decodeBlocks` over contiguous blocks of the last axis (its length must be a
 * multiple of the block size), then `* scale`.
 *
 * @param t the tensor
 * @param qp the parameters
 * @param name tensor name for error messages
 * @returns the fake-quantized tensor
 *
 * @example
 * ```ts
 * import { fakeQuantize, fitQParams, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const w = tensor(new Float32Array([-1, 0.3, 1]), [3]);
 * const qp = fitQParams(w, { format: "int2", granularity: { kind: "tensor" } });
 * // int2 symmetric: scale = 1 / 1.5, grid {-2, -1, 0, 1} * scale; -1.5 ties to even -2
 * const expected = [-2, 0, 1].map((q) => Math.fround(q * qp.scale[0]));
 * assert.deepEqual([...fakeQuantize(w, qp).data], expected);
 * ```
 */
export function fakeQuantize(t: Tensor, qp: QParams, name?: string): Tensor {
  const fmt = resolveFormat(qp.format);
  const L = checkParams(t.shape, t.data.length, qp, name);
  checkFinite(t.data, name);
  if (isIntFormat(fmt)) {
    return { shape: [...t.shape], data: intQuant(t.data, qp, L, fmt, true) };
  }
  const y = floatScale(t.data, qp, L, fmt);
  let v: Float32Array;
  if (isBlockFormat(fmt)) {
    const last = t.shape.length ? t.shape[t.shape.length - 1] : 1;
    if (last % fmt.blockSize !== 0) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `block format '${fmt.name}' needs the last axis to be a multiple of ${fmt.blockSize}, ` +
          `got shape [${t.shape}]`,
        name === undefined ? {} : { tensor: name },
      );
    }
    v = y.length ? fmt.decodeBlocks(fmt.encodeBlocks(y)) : new Float32Array(0);
  } else {
    v = fmt.decode(fmt.encode(y));
  }
  const out = new Float32Array(v.length);
  forEachScale(L, (i, k) => {
    out[i] = Math.fround(v[i] * qp.scale[k]);
  });
  return { shape: [...t.shape], data: out };
}

/**
 * Encodes already-quantized values (integers for integer formats) to codes with
 * the named format.
 *
 * @param values the values
 * @param format format name
 * @returns the codes
 *
 * @example
 * ```ts
 * import { decodeCodes, encodeValues } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.deepEqual([...decodeCodes(encodeValues(new Float32Array([-3, 7]), "int4"), "int4")], [-3, 7]);
 * ```
 */
export function encodeValues(values: Float32Array, format: string): Codes {
  return resolveFormat(format).encode(values);
}

/**
 * Decodes codes to the values they stand for (integers for integer formats).
 *
 * @param codes the codes
 * @param format format name
 * @returns the values
 *
 * @example
 * ```ts
 * import { decodeCodes, encodeValues } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.deepEqual([...decodeCodes(encodeValues(new Float32Array([1.5]), "fp8_e4m3fn"), "fp8_e4m3fn")], [1.5]);
 * ```
 */
export function decodeCodes(codes: Codes, format: string): Float32Array {
  return resolveFormat(format).decode(codes);
}

// *** private ***

function checkParams(
  shape: readonly number[],
  length: number,
  qp: QParams,
  name?: string,
): Layout {
  const subject = name === undefined ? {} : { tensor: name };
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== length) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `shape [${shape}] holds ${n} values, got ${length}`,
      subject,
    );
  }
  const L = layoutOf(shape, qp.granularity, name);
  if (qp.scale.length !== L.count || qp.zeroPoint.length !== L.count) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${qp.granularity.kind} granularity over shape [${shape}] needs ${L.count} scales and ` +
        `zero points, got ${qp.scale.length} and ${qp.zeroPoint.length}`,
      subject,
    );
  }
  for (let k = 0; k < L.count; k++) {
    const s = qp.scale[k];
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `scale ${k} is ${s}; scales must be finite and > 0`,
        subject,
      );
    }
  }
  return L;
}

function forEachScale(L: Layout, f: (i: number, k: number) => void): void {
  let i = 0;
  for (let o = 0; o < L.outer; o++) {
    for (let d = 0; d < L.dim; d++) {
      const base = o * L.oStride + Math.floor(d / L.group) * L.dStride;
      for (let r = 0; r < L.inner; r++, i++) f(i, base + r * L.rStride);
    }
  }
}

/** torch semantics; `dequant` returns `(q - zp) * scale`, else the integer `q`. */
function intQuant(
  x: Float32Array,
  qp: QParams,
  L: Layout,
  fmt: NumberFormat,
  dequant: boolean,
): Float32Array {
  const [qmin, qmax] = intBounds(fmt);
  const inv = new Float64Array(qp.scale.length);
  for (let k = 0; k < inv.length; k++) inv[k] = Math.fround(1 / qp.scale[k]);
  const out = new Float32Array(x.length);
  forEachScale(L, (i, k) => {
    const z = qp.zeroPoint[k];
    let q = rne(Math.fround(x[i] * inv[k])) + z;
    q = q < qmin ? qmin : q > qmax ? qmax : q;
    out[i] = dequant ? Math.fround((q - z) * qp.scale[k]) : q;
  });
  return out;
}

/** `clamp(x / scale, format.min, format.max)` in float32. */
function floatScale(x: Float32Array, qp: QParams, L: Layout, fmt: NumberFormat): Float32Array {
  const out = new Float32Array(x.length);
  const block = isBlockFormat(fmt);
  const lo = fmt.min, hi = fmt.max;
  forEachScale(L, (i, k) => {
    const y = Math.fround(x[i] / qp.scale[k]);
    out[i] = block ? y : y < lo ? lo : y > hi ? hi : y;
  });
  return out;
}

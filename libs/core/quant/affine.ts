/**
 * Quantize, dequantize and fake-quantize a tensor under fitted parameters, for
 * any format, with torch's integer semantics.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { Codes, QParams } from "../types.ts";
import { checkFinite } from "./_layout.ts";
import { isBlockFormat, isIntFormat, resolveFormat } from "./_format.ts";
import { checkParams, fakeQuantizeWith, floatScale, forEachScale, intQuant } from "./_apply.ts";

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
  return fakeQuantizeWith(resolveFormat(qp.format), t, qp, name);
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

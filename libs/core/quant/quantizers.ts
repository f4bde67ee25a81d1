/**
 * The built-in quantizer records: "symmetric" and "affine" round-to-nearest
 * quantizers wrapping {@link chooseQParams}, {@link quantizeAffine} and
 * {@link dequantizeAffine}.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { Codes, FitOptions, QParams, Quantizer, QuantMode, Range } from "../types.ts";
import { chooseQParams } from "./qparams.ts";
import { dequantizeAffine, quantizeAffine } from "./affine.ts";

function make(mode: QuantMode): Quantizer {
  return {
    name: mode,
    fit(range: Range, opts: FitOptions): QParams {
      if (opts.mode !== undefined && opts.mode !== mode) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `quantizer '${mode}' was asked for mode '${opts.mode}'; use the '${opts.mode}' quantizer`,
        );
      }
      return chooseQParams(range, { ...opts, mode });
    },
    quantize(t: Tensor, qp: QParams): Codes {
      return quantizeAffine(t, qp);
    },
    dequantize(codes: Codes, qp: QParams, shape: readonly number[]): Tensor {
      return dequantizeAffine(codes, qp, shape);
    },
  };
}

/**
 * The built-in quantizers: `"symmetric"` (zero point fixed at the format's
 * midpoint, any format) and `"affine"` (fitted zero point, integer formats).
 * Both round half to even on integer grids and use the format's own RNE
 * encoder otherwise.
 *
 * @returns fresh quantizer records
 *
 * @example
 * ```ts
 * import { builtinQuantizers, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const [sym] = builtinQuantizers();
 * const qp = sym.fit({ min: new Float32Array([-2]), max: new Float32Array([1]) },
 *   { format: "int8", granularity: { kind: "tensor" }, mode: "symmetric" });
 * const t = sym.dequantize(sym.quantize(tensor(new Float32Array([1]), [1]), qp), qp, [1]);
 * assert.ok(Math.abs(t.data[0] - 1) <= qp.scale[0] / 2);
 * ```
 */
export function builtinQuantizers(): Quantizer[] {
  return [make("symmetric"), make("affine")];
}

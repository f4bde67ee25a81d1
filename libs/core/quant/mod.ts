/**
 * Quantizers: choosing scales and zero points per tensor / channel / group,
 * quantize / dequantize / fake-quantize over any number format with torch's
 * integer semantics, and dyadic integer-only requantization.
 *
 * @example
 * ```ts
 * import { fakeQuantize, fitQParams, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const w = tensor(new Float32Array([0.1, -0.2, 0.3, -0.4]), [2, 2]);
 * const qp = fitQParams(w, { format: "int8", granularity: { kind: "channel", axis: 0 } });
 * const err = fakeQuantize(w, qp).data.map((v, i) => Math.abs(v - w.data[i]));
 * assert.ok(Math.max(...err) <= Math.max(...qp.scale) / 2);
 * ```
 *
 * @module
 */

export * from "./qparams.ts";
export * from "./affine.ts";
export * from "./dyadic.ts";
export * from "./quantizers.ts";
export * from "./round.ts";

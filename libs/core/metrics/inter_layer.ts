/**
 * `inter-layer` ("Augmenting Hessians with Inter-Layer Dependencies"): a
 * layer's single-layer effect (ZeroQ's KL) plus half of its interaction with
 * each neighbour, where the interaction is the joint effect of quantizing both
 * layers beyond the sum of their single-layer effects:
 *
 *     s(l, c) = D({l: c}) + ½ Σ_{m ∈ N(l)} max(0, D({l: c, m: c}) − D({l: c}) − D({m: c}))
 *
 * NOTE: only super-additive (harmful) interactions are added. Negative ones
 * (errors that happen to cancel on the calibration data) would push scores of
 * low-bit candidates to zero and make every strategy indifferent between them;
 * on the digits CNN that cost 1.8 points of top-1 at 4.5 bits.
 *
 * Each pair's interaction is split evenly between its two layers, so the sum
 * of scores over an allocation that gives neighbours the same candidate
 * counts every pair once, as in the paper's block-diagonal-plus-off-diagonal
 * Hessian; D is the output KL divergence of quantized weights. A candidate's
 * activation format adds, as in `zeroq`, the KL with only this layer's input
 * quantized (`SensitivityContext.activationDivergence`).
 *
 * @module
 */

import type { SensitivityMetric } from "../types.ts";
import { asContext, requireCapability } from "./context.ts";

/**
 * The `inter-layer` metric.
 *
 * @example
 * ```ts
 * import { interLayerMetric } from "@lowbit/core";
 * // D is additive except that quantizing a and b together costs 0.3 extra
 * const D = (q: Record<string, string>) => Object.keys(q).length * 0.1 + (q.a && q.b ? 0.3 : 0);
 * const ctx = { hasLabels: false, paramCount: () => 1, quantError: () => 0, outputDivergence: D,
 *   neighbours: (l: string) => (l === "a" ? ["b"] : ["a"]) };
 * const s = await interLayerMetric.score(ctx, "a", "int4");
 * if (Math.abs(s - 0.25) > 1e-12) throw new Error(String(s));
 * ```
 */
export const interLayerMetric: SensitivityMetric = {
  name: "inter-layer",
  async score(ctx, layer, candidate) {
    const c = asContext(ctx, "inter-layer");
    const div = requireCapability(c, "outputDivergence", "inter-layer");
    const nbs = requireCapability(c, "neighbours", "inter-layer")(layer);
    const single = await div({ [layer]: candidate });
    let s = single;
    for (const m of nbs) {
      const joint = await div({ [layer]: candidate, [m]: candidate });
      const other = await div({ [m]: candidate });
      s += 0.5 * Math.max(0, joint - single - other);
    }
    return s + (await c.activationDivergence?.(layer, candidate) ?? 0);
  },
};

/**
 * Hessian-aware metrics: `hawq-v2` (Hutchinson trace per parameter × ‖Q(W) − W‖²,
 * HAWQ-V2) and `hawq` (top Hessian eigenvalue × ‖Q(W) − W‖², HAWQ). Both are the
 * second-order Taylor estimate ½ ΔWᵀ H ΔW of the loss increase with H replaced
 * by its average (trace / n) or worst-case (λ_max) curvature; the ½ is dropped.
 *
 * Activation term. The Hessian with respect to a layer's input is not available
 * cheaply (it would need Hutchinson probes on every activation tensor), so the
 * activation error is a proxy built from the same curvature: under the
 * Gauss-Newton / K-FAC factorisation H_W ≈ E[xxᵀ] ⊗ H_y, the weight coefficient
 * divided by the layer's mean input energy e = tr(XᵀX)/(n·d_in) is the
 * curvature per unit of squared output error (tr(H_W)/n / e = tr(H_y)/d_out for
 * `hawq-v2`; λ_max/e bounds it for `hawq`). A quantized input moves the output
 * by W·(Q(x) − x), so the activation term is that coefficient / e times the
 * measured ‖W·(Q(X) − X)‖² / n (`SensitivityContext.activationError`, the
 * activation term of `layer-hessian`): the weight and activation terms are
 * both curvature × squared output error and add. With e = 0 (an all-zero
 * input) the activation error is 0 too and the term is 0.
 *
 * @module
 */

import type { SensitivityMetric } from "../types.ts";
import { asContext, requireCapability, type SensitivityContext } from "./context.ts";

/** coefficient / input energy × measured activation output error (0 without the capability). */
async function activationTerm(
  c: SensitivityContext,
  layer: string,
  candidate: string,
  coefficient: number,
  metric: string,
): Promise<number> {
  if (!c.activationError) return 0;
  const err = await c.activationError(layer, candidate);
  if (err === 0) return 0;
  const e = await requireCapability(c, "inputEnergy", metric)(layer);
  return e > 0 ? (coefficient / e) * err : 0;
}

/**
 * `hawq-v2`: tr(H_l) / n_l · ‖Q(W_l) − W_l‖².
 *
 * @example
 * ```ts
 * import { hawqV2Metric } from "@lowbit/core";
 * const ctx = { hasLabels: true, paramCount: () => 4, quantError: () => 0.5, hessianTrace: () => 8 };
 * if ((await hawqV2Metric.score(ctx, "l", "int4")) !== 1) throw new Error();
 * // activation proxy: (8 / 4) / energy 2 × activation error 0.25 = 0.25
 * const act = { ...ctx, inputEnergy: () => 2, activationError: () => 0.25 };
 * if ((await hawqV2Metric.score(act, "l", "int4@int8")) !== 1.25) throw new Error();
 * ```
 */
export const hawqV2Metric: SensitivityMetric = {
  name: "hawq-v2",
  async score(ctx, layer, candidate) {
    const c = asContext(ctx, "hawq-v2");
    const trace = await requireCapability(c, "hessianTrace", "hawq-v2")(layer);
    const k = trace / c.paramCount(layer);
    return k * (await c.quantError(layer, candidate)) +
      await activationTerm(c, layer, candidate, k, "hawq-v2");
  },
};

/**
 * `hawq`: λ_max(H_l) · ‖Q(W_l) − W_l‖².
 *
 * @example
 * ```ts
 * import { hawqMetric } from "@lowbit/core";
 * const ctx = { hasLabels: true, paramCount: () => 4, quantError: () => 0.5, topEigenvalue: () => 3 };
 * if ((await hawqMetric.score(ctx, "l", "int4")) !== 1.5) throw new Error();
 * const act = { ...ctx, inputEnergy: () => 2, activationError: () => 0.5 };
 * if ((await hawqMetric.score(act, "l", "int4@int8")) !== 2.25) throw new Error();
 * ```
 */
export const hawqMetric: SensitivityMetric = {
  name: "hawq",
  async score(ctx, layer, candidate) {
    const c = asContext(ctx, "hawq");
    const lambda = await requireCapability(c, "topEigenvalue", "hawq")(layer);
    return lambda * (await c.quantError(layer, candidate)) +
      await activationTerm(c, layer, candidate, lambda, "hawq");
  },
};

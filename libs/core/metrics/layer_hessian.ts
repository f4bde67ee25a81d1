/**
 * `layer-hessian`: the gradient-free proxy tr(XᵀX) / (n · d_in) · ‖Q(W) − W‖²,
 * from the layer's captured inputs X (n rows of d_in features). For a linear
 * layer y = Wx the output error is ‖ΔW x‖², whose expectation is
 * tr(ΔW E[xxᵀ] ΔWᵀ); replacing E[xxᵀ] by its mean eigenvalue tr(XᵀX)/(n·d_in)
 * gives this proxy (the layer-wise Hessian of GPTQ / OBQ, averaged).
 *
 * The candidate's activation format adds, next to it, the measured output
 * error of quantizing the captured inputs alone, ‖W·(Q(X) − X)‖² / n
 * (`SensitivityContext.activationError`): both terms are expected squared
 * output errors per row, so they add.
 *
 * @module
 */

import type { SensitivityMetric } from "../types.ts";
import { asContext, requireCapability } from "./context.ts";

/**
 * The `layer-hessian` metric.
 *
 * @example
 * ```ts
 * import { layerHessianMetric } from "@lowbit/core";
 * const ctx = { hasLabels: false, paramCount: () => 4, quantError: () => 0.5, inputEnergy: () => 2 };
 * if ((await layerHessianMetric.score(ctx, "l", "int4")) !== 1) throw new Error();
 * // with a measured activation term: 2 · 0.5 + 0.25
 * const act = { ...ctx, activationError: () => 0.25 };
 * if ((await layerHessianMetric.score(act, "l", "int4@int8")) !== 1.25) throw new Error();
 * ```
 */
export const layerHessianMetric: SensitivityMetric = {
  name: "layer-hessian",
  async score(ctx, layer, candidate) {
    const c = asContext(ctx, "layer-hessian");
    const energy = await requireCapability(c, "inputEnergy", "layer-hessian")(layer);
    return energy * (await c.quantError(layer, candidate)) +
      (await c.activationError?.(layer, candidate) ?? 0);
  },
};

/**
 * What sensitivity metrics ask of a model, without knowing what the model is.
 * The graph side (`libs/pipeline/search/`, which can run the executor and the
 * autodiff interpreter) implements this; the metrics in `libs/core/metrics/`
 * are formulas over it, so core stays free of graphs and model families.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";

/** Per-layer quantities a metric may ask for. Optional members are capabilities. */
export interface SensitivityContext {
  /** Whether labels are available (the cross-entropy loss needs them). */
  readonly hasLabels: boolean;
  /** Weight elements of a layer. */
  paramCount(layer: string): number;
  /** ‖Q(W) − W‖² of the layer's weight under the candidate. */
  quantError(layer: string, candidate: string): number | Promise<number>;
  /** Hutchinson estimate of tr(H) of the task loss w.r.t. the layer's weight. */
  hessianTrace?(layer: string): number | Promise<number>;
  /** Top eigenvalue of the layer's Hessian block (power iteration). */
  topEigenvalue?(layer: string): number | Promise<number>;
  /** tr(XᵀX) / (n · d_in) of the layer's captured inputs (mean energy per input feature). */
  inputEnergy?(layer: string): number | Promise<number>;
  /** KL(float output ‖ output with these layers quantized to these candidates), mean per sample. */
  outputDivergence?(quantized: Readonly<Record<string, string>>): number | Promise<number>;
  /** Layers adjacent to `layer` in the data flow (producer / consumer weight layers). */
  neighbours?(layer: string): readonly string[];
  /**
   * Measured output error of quantizing only the layer's input with the candidate's activation
   * format: ‖W·(Q(X) − X)‖² / n over the captured inputs X (n rows: samples × output positions),
   * the same per-row output error the weight term ‖ΔW·x‖² estimates; 0 when the input stays float.
   * Candidates carry no activation format in contexts without this capability.
   */
  activationError?(layer: string, candidate: string): number | Promise<number>;
  /**
   * KL(float output ‖ output with only the layer's input quantized by the candidate's activation
   * format), mean per sample; 0 when the input stays float.
   */
  activationDivergence?(layer: string, candidate: string): number | Promise<number>;
}

/**
 * Returns a capability of the context or throws a `LowbitError` naming the metric that needs it.
 *
 * @param ctx the context
 * @param what the capability name
 * @param metric the metric asking, for the message
 * @returns the bound capability
 *
 * @example
 * ```ts
 * import { requireCapability } from "@lowbit/core";
 * const ctx = { hasLabels: false, paramCount: () => 1, quantError: () => 0, inputEnergy: () => 2 };
 * if (requireCapability(ctx, "inputEnergy", "layer-hessian")("l") !== 2) throw new Error();
 * ```
 */
export function requireCapability<K extends keyof SensitivityContext>(
  ctx: SensitivityContext,
  what: K,
  metric: string,
): NonNullable<SensitivityContext[K]> {
  const f = ctx[what];
  if (typeof f !== "function") {
    throw new LowbitError(
      "UNSUPPORTED",
      `metric '${metric}' needs ${String(what)}, which this context does not provide`,
    );
  }
  return (f as (...a: unknown[]) => unknown).bind(ctx) as NonNullable<SensitivityContext[K]>;
}

/**
 * Checks the `ctx` argument of `SensitivityMetric.score` is a {@link SensitivityContext}.
 *
 * @param ctx what was passed
 * @param metric the metric, for the message
 * @returns the context
 *
 * @example
 * ```ts
 * import { asContext } from "@lowbit/core";
 * const ctx = asContext({ hasLabels: true, paramCount: () => 1, quantError: () => 0 }, "hawq");
 * if (!ctx.hasLabels) throw new Error();
 * ```
 */
export function asContext(ctx: unknown, metric: string): SensitivityContext {
  const c = ctx as SensitivityContext;
  if (!c || typeof c.paramCount !== "function" || typeof c.quantError !== "function") {
    throw new LowbitError("INVALID_ARGUMENT", `metric '${metric}' needs a SensitivityContext`);
  }
  return c;
}

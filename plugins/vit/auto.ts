/**
 * `--vit-layernorm auto` / `--vit-bias auto` (the defaults): the plugin's two graph stages —
 * RepQ-ViT's LayerNorm reparameterisation and the empirical bias correction — chosen per model
 * from calibration data, without labels. Each candidate setting (both stages' values where the
 * option is `auto`, the forced value otherwise) quantizes the model completely, and the one
 * whose output is closest to the float model's on held-out calibration samples is kept: the
 * mean squared error of the model's output (the logits of a classifier), on the calibration
 * samples from {@link HELD_OUT_FROM} on. Those samples are held out from every step that fits
 * to an output error: the bias correction measures its shifts on the first 64 samples and the
 * fit stage searches its parameters on the first 32, so scoring on those would favour the
 * correction, which matches the float means there by construction. (The range calibration and
 * the reparameterisation's per-channel ranges do see them: min / max, not a fit to the error.)
 * With 64 calibration samples or fewer, all of them are used, and the choice's note says so.
 *
 * The output MSE and not a KL divergence: it needs nothing of what the outputs mean (a
 * feature extractor's embeddings as well as a classifier's logits), and it is the error the
 * accuracy guard's SQNR measures.
 *
 * The choice replaces `auto` in the state's plugin options, so the plan records the values
 * used (a replay does not choose again), and every candidate's figure goes into the warnings
 * and into the notes of the LayerNorm points. Ties go to the earlier candidate, in the order
 * reparam before tensor, empirical before off.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { createExecutor, type Model, type TensorData } from "@lowbit/graph";
import {
  quantize,
  type QuantizeState,
  simulate,
  sliceBatch,
  sumSquaredError,
} from "@lowbit/pipeline";
import { BIAS_SAMPLES } from "./bias.ts";
import { FIT_SAMPLES } from "./fit_stage.ts";

/** The first calibration sample of the held-out part the candidates are scored on. */
export const HELD_OUT_FROM: number = Math.max(BIAS_SAMPLES, FIT_SAMPLES);

/** One setting of the two stages. */
export interface StageChoice {
  /** `--vit-layernorm`. */
  readonly layernorm: "reparam" | "tensor";
  /** `--vit-bias`. */
  readonly bias: "empirical" | "off";
}

/** A candidate with its score. */
export interface ScoredChoice extends StageChoice {
  /** Mean squared error of the model output against the float model's, held-out samples. */
  readonly mse: number;
}

/**
 * The candidates for the two options' values (`auto` expands to both values, in the order
 * reparam, tensor and empirical, off).
 *
 * @param layernorm `--vit-layernorm`: reparam, tensor or auto
 * @param bias `--vit-bias`: empirical, off or auto
 * @returns the candidate settings, in tie-break order
 *
 * @example
 * ```ts
 * import { stageCandidates } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * assert.deepEqual(stageCandidates("auto", "off"), [
 *   { layernorm: "reparam", bias: "off" }, { layernorm: "tensor", bias: "off" }]);
 * assert.equal(stageCandidates("auto", "auto").length, 4);
 * ```
 */
export function stageCandidates(layernorm: string, bias: string): StageChoice[] {
  const ln = layernorm === "auto" ? ["reparam", "tensor"] as const : [layernorm];
  const bc = bias === "auto" ? ["empirical", "off"] as const : [bias];
  const out: StageChoice[] = [];
  for (const l of ln) {
    for (const b of bc) {
      out.push({ layernorm: l as StageChoice["layernorm"], bias: b as StageChoice["bias"] });
    }
  }
  return out;
}

/**
 * The candidate with the lowest error (the first of equals).
 *
 * @param scored scored candidates, in tie-break order
 * @returns the best
 *
 * @example
 * ```ts
 * import { bestChoice } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const best = bestChoice([{ layernorm: "reparam", bias: "empirical", mse: 2 },
 *   { layernorm: "tensor", bias: "off", mse: 1 }, { layernorm: "tensor", bias: "empirical", mse: 1 }]);
 * assert.deepEqual([best.layernorm, best.bias], ["tensor", "off"]);
 * ```
 */
export function bestChoice(scored: readonly ScoredChoice[]): ScoredChoice {
  if (scored.length === 0) throw new LowbitError("INTERNAL", "no candidate to choose from");
  return scored.reduce((b, s) => s.mse < b.mse ? s : b);
}

/** Samples per batch of the scoring runs. */
const BATCH = 32;

/**
 * Quantizes `st`'s model under each candidate setting (everything else as `st` was asked) and
 * scores it: the output MSE against the float model on the calibration samples from
 * `from` on (all of them when there are no more than `from`).
 *
 * @param st the pipeline's state (its options, registry and plugin options are used)
 * @param candidates the settings to try
 * @param from first held-out sample
 * @returns each candidate with its score, in the candidates' order
 */
export async function scoreStageChoices(
  st: QuantizeState,
  candidates: readonly StageChoice[],
  from: number = HELD_OUT_FROM,
): Promise<ScoredChoice[]> {
  const calib = st.opts.calib!;
  const start = calib.count > from ? from : 0;
  const model: Model = st.opts.model;
  const float = createExecutor(model, { registry: st.registry });
  const outName = model.graph.outputs[0].name;
  const batches: Record<string, TensorData>[] = [];
  const ref: Float32Array[] = [];
  for (let s = start; s < calib.count; s += BATCH) {
    const b = sliceBatch(calib, s, Math.min(calib.count, s + BATCH));
    batches.push(b);
    ref.push(Float32Array.from((await float.run(b))[outName].data as Float32Array));
  }
  const out: ScoredChoice[] = [];
  for (const c of candidates) {
    const { quantized } = await quantize({
      ...st.opts,
      registry: st.registry,
      pluginOptions: { ...st.pluginOptions, "vit-layernorm": c.layernorm, "vit-bias": c.bias },
      progress: undefined,
    });
    const run = simulate(quantized);
    let se = 0, n = 0;
    for (let i = 0; i < batches.length; i++) {
      const y = (await run.run(batches[i])).data as Float32Array;
      se += sumSquaredError(ref[i], y);
      n += ref[i].length;
    }
    out.push({ ...c, mse: se / n });
  }
  return out;
}

/**
 * Scores already made for the same model and calibration data (by object) and the same other
 * options: the accuracy guard quantizes again with more rules (points kept in float), and
 * those re-runs keep the choice instead of quantizing every candidate again.
 */
const cache = new WeakMap<Model, WeakMap<object, Map<string, ScoredChoice[]>>>();

async function cachedScores(
  st: QuantizeState,
  ln: string,
  bias: string,
  make: () => Promise<ScoredChoice[]>,
): Promise<ScoredChoice[]> {
  const o = st.opts;
  const key = JSON.stringify([
    ln,
    bias,
    o.preset ?? null,
    o.calibrator ?? null,
    o.rounding ?? null,
    o.smoothquant ?? null,
    o.equalize ?? null,
    o.equalizeWhere ?? null,
    o.splitTaps ?? null,
    o.biasCorrection ?? null,
    o.gptq ?? null,
    Object.entries(st.pluginOptions).sort(([a], [b]) => a < b ? -1 : 1),
  ]);
  let byData = cache.get(o.model);
  if (!byData) cache.set(o.model, byData = new WeakMap());
  let byKey = byData.get(o.calib!);
  if (!byKey) byData.set(o.calib!, byKey = new Map());
  const hit = byKey.get(key);
  if (hit) return hit;
  const scored = await make();
  byKey.set(key, scored);
  return scored;
}

/** A choice's summary for the warnings and the notes. */
function describe(scored: readonly ScoredChoice[], best: ScoredChoice, heldOut: string): string {
  const fig = scored.map((s) =>
    `${s.layernorm} + ${s.bias} ${s.mse.toPrecision(4)}${s === best ? " (chosen)" : ""}`
  ).join(", ");
  return `vit: --vit-layernorm / --vit-bias auto chose ${best.layernorm} + ${best.bias}: output ` +
    `MSE against the float model on ${heldOut}: ${fig}`;
}

/**
 * The plugin's `vit-auto` stage (after `check`, before the graph stages): resolves `auto` in
 * `--vit-layernorm` / `--vit-bias` (see the module doc). With no `auto`, or when a plan is
 * replayed (its options hold the values it was made with), it does nothing.
 *
 * @param st the pipeline's state (its plugin options are resolved in place)
 * @returns the scored candidates, or undefined when nothing was chosen
 *
 * @example
 * ```ts
 * import { autoStage } from "./auto.ts";
 * import assert from "node:assert/strict";
 * // both forced: nothing to choose
 * const st = { opts: {}, pluginOptions: { "vit-layernorm": "tensor", "vit-bias": "off" },
 *   warnings: [], entries: [] } as never;
 * assert.equal(await autoStage(st), undefined);
 * ```
 */
export async function autoStage(st: QuantizeState): Promise<ScoredChoice[] | undefined> {
  const opts = st.pluginOptions as Record<string, string | number | boolean | undefined>;
  const ln = typeof opts["vit-layernorm"] === "string" ? opts["vit-layernorm"] : "auto";
  const bias = typeof opts["vit-bias"] === "string" ? opts["vit-bias"] : "auto";
  if (ln !== "auto" && bias !== "auto") return undefined;
  const candidates = stageCandidates(ln, bias);
  if (!st.opts.calib) {
    // (also a replayed plan made before the options had `auto`)
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "the vit plugin chooses --vit-layernorm / --vit-bias auto on calibration data; pass " +
        "--calib, or choose them (--vit-layernorm reparam|tensor --vit-bias empirical|off)",
    );
  }
  const scored = await cachedScores(st, ln, bias, () => scoreStageChoices(st, candidates));
  const best = bestChoice(scored);
  opts["vit-layernorm"] = best.layernorm;
  opts["vit-bias"] = best.bias;
  const count = st.opts.calib.count;
  const heldOut = count > HELD_OUT_FROM
    ? `calibration samples ${HELD_OUT_FROM}–${count - 1} (held out from the fits)`
    : `all ${count} calibration samples (no more than ${HELD_OUT_FROM}: none held out)`;
  const text = describe(scored, best, heldOut);
  st.warnings.push(text);
  for (const e of st.entries) {
    if (e.by === "vit-layernorm" && !e.skip) e.note = `${e.note ?? "LayerNorm output"}; ${text}`;
  }
  return scored;
}

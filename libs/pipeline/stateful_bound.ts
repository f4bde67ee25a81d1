/**
 * The accuracy guard's default bound for a stateful model whose first output is a probability
 * (Silero VAD: `input`, `state` → `output`, `stateN`). Such a model is run frame by frame with its
 * own state fed back, so a small per-frame error drifts the state and grows: Silero v5 at plain
 * w8a8 has an output SQNR of 21 dB (the SQNR guard passes it) while its speech probability moves
 * by 0.18 on a held-out clip. What reads a probability compares it with a threshold, so its worst
 * frames matter, not its mean: such a model gets `--max-delta 0.01` by default, measured closed
 * loop over the streams of the guard's data (half of the 0.02 a VAD tolerates, the margin for
 * audio the guard has not seen).
 *
 * A model is "stateful" when {@link statePairs} finds a state input / output pair and the data
 * holds every state input; its first output is "a probability" when every value of it the float
 * model computes on the data (up to 128 samples, in one batch) is finite and within [0, 1].
 * Anything else keeps the guard's bound off (the SQNR guard still runs): an unbounded output's
 * tolerable |Δ| depends on its scale, which the user knows and lowbit does not.
 *
 * @module
 */

import { createExecutor, type Model } from "@lowbit/graph";
import type { Registry } from "@lowbit/core";
import { type Dataset, sliceBatch } from "./dataset.ts";
import { statePairs } from "./stateful.ts";

/** The default max |Δ| bound of a stateful model's probability output. */
export const STATEFUL_MAX_DELTA = 0.01;

/** What {@link defaultMaxDelta} decided. */
export interface DefaultMaxDelta {
  /** The bound, or null for none. */
  bound: number | null;
  /** Why, for the user (names the state pairs and the output). */
  reason: string;
}

/**
 * The default `--max-delta` of a model: {@link STATEFUL_MAX_DELTA} for a stateful model whose
 * first output is a probability on the data, else none (see the module documentation).
 *
 * @param model the (prepared) float model
 * @param data the data the guard measures on
 * @param opts samples run (default 128), the registry of the model's ops
 * @returns the bound (or null) and why
 *
 * @example
 * ```ts
 * import { defaultMaxDelta } from "@lowbit/pipeline";
 * // y = Sigmoid(x + h), hn = y: a stateful model with a probability output.
 * const v = (name: string) => ({ name, dtype: "float32" as const, shape: ["n", 1] });
 * const model = {
 *   irVersion: 8, opsets: [{ domain: "", version: 17 }], producerName: "", producerVersion: "",
 *   metadata: {},
 *   graph: { name: "g", valueInfo: new Map(), initializers: new Map(),
 *     inputs: [v("x"), v("h")], outputs: [v("y"), v("hn")],
 *     nodes: [
 *       { name: "a", op: "Add", domain: "", inputs: ["x", "h"], outputs: ["s"], attrs: {} },
 *       { name: "b", op: "Sigmoid", domain: "", inputs: ["s"], outputs: ["y"], attrs: {} },
 *       { name: "c", op: "Identity", domain: "", inputs: ["y"], outputs: ["hn"], attrs: {} },
 *     ] } };
 * const f = (...a: number[]) => ({ dtype: "float32" as const, shape: [2, 1], data: Float32Array.from(a) });
 * const d = await defaultMaxDelta(model, { inputs: { x: f(1, -3), h: f(0, 0.5) }, count: 2 });
 * if (d.bound !== 0.01) throw new Error(d.reason);
 * // Without the state in the data there is no stream to measure: no bound.
 * const none = await defaultMaxDelta(model, { inputs: { x: f(1, -3) }, count: 2 });
 * if (none.bound !== null) throw new Error(none.reason);
 * ```
 */
export async function defaultMaxDelta(
  model: Model,
  data: Dataset,
  opts: { samples?: number; registry?: Registry } = {},
): Promise<DefaultMaxDelta> {
  const pairs = statePairs(model).filter((p) => data.inputs[p.input] ?? data.whole?.[p.input]);
  if (pairs.length === 0) {
    return { bound: null, reason: "no state input / output pair with data" };
  }
  const named = pairs.map((p) => `${p.input} → ${p.output}`).join(", ");
  const first = model.graph.outputs[0].name;
  const n = Math.min(data.count, opts.samples ?? 128);
  const exec = createExecutor(model, opts.registry ? { registry: opts.registry } : {});
  const y = (await exec.run(sliceBatch(data, 0, n)))[first];
  const values = y.data as ArrayLike<number>;
  let inUnit = y.dtype === "float32" && values.length > 0;
  for (let i = 0; inUnit && i < values.length; i++) {
    inUnit = values[i] >= 0 && values[i] <= 1; // false for NaN too
  }
  if (!inUnit) {
    return {
      bound: null,
      reason: `stateful (${named}), but its first output '${first}' is not within [0, 1] on ` +
        `the data: no default bound on its max |Δ|`,
    };
  }
  return {
    bound: STATEFUL_MAX_DELTA,
    reason: `stateful model (${named}) whose first output '${first}' is a probability: ` +
      `--max-delta ${STATEFUL_MAX_DELTA} by default, closed loop (--max-delta off to skip)`,
  };
}

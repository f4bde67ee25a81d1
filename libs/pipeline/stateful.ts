/**
 * Models that carry a state from one call to the next (Silero VAD's `h`, `c` → `hn`, `cn`; its v5
 * `state` → `stateN`), measured as they are used: frame by frame, each model fed its own state
 * back. One call at a time hides how a recurrent model's error grows: Silero v5 at w8a8 moves
 * its speech probability by 0.066 at most when fed the float model's states, by 0.19 when fed its
 * own.
 *
 * The frames come from calibration data as the CLI loads it (`--calib input=frames.npy --calib
 * state=state.npy`, the state batched along its own axis): a frame continues the one before it
 * when its state input is the float model's state output there, so runs of consecutive frames of
 * a stream are found in the data itself.
 *
 * @module
 */

import type { Registry } from "@lowbit/core";
import { createExecutor, type Model, type TensorData } from "@lowbit/graph";
import { type Dataset, sliceBatch } from "./dataset.ts";
import { equalValues } from "./_equal_values.ts";

/** A state input and the output the model writes its next value to. */
export interface StatePair {
  /** The input (`h`). */
  input: string;
  /** The output (`hn`). */
  output: string;
}

/**
 * The state pairs of a model: an input and an output of the same dtype and rank whose name starts
 * with the input's name (`h` → `hn`, `state` → `stateN`), the model's first output excluded.
 *
 * @param model the model
 * @returns the pairs, in input order
 *
 * @example
 * ```ts
 * import { statePairs } from "@lowbit/pipeline";
 * const v = (name: string) => ({ name, dtype: "float32" as const, shape: [2, "batch", 64] });
 * const model = { irVersion: 8, opsets: [], producerName: "", producerVersion: "", metadata: {},
 *   graph: { name: "g", nodes: [], initializers: new Map(), valueInfo: new Map(),
 *     inputs: [{ name: "input", dtype: "float32" as const, shape: [1, 512] }, v("h"), v("c")],
 *     outputs: [{ name: "output", dtype: "float32" as const, shape: [1, 1] }, v("hn"), v("cn")] } };
 * const pairs = statePairs(model).map((p) => `${p.input}>${p.output}`).join();
 * if (pairs !== "h>hn,c>cn") throw new Error(pairs);
 * ```
 */
export function statePairs(model: Model): StatePair[] {
  const outs = model.graph.outputs.slice(1);
  const pairs: StatePair[] = [];
  for (const i of model.graph.inputs) {
    const o = outs.find((o) =>
      o.name !== i.name && o.name.startsWith(i.name) && o.dtype === i.dtype &&
      (o.shape === undefined || i.shape === undefined || o.shape.length === i.shape.length) &&
      !pairs.some((p) => p.output === o.name)
    );
    if (o) pairs.push({ input: i.name, output: o.name });
  }
  return pairs;
}

/** What {@link closedLoop} measured. */
export interface ClosedLoop {
  /** Runs of consecutive frames found in the data. */
  streams: number;
  /** Frames run. */
  frames: number;
  /** Largest |Δ| of the first output, quantized vs float. */
  maxAbs: number;
  /** Mean |Δ| of the first output. */
  meanAbs: number;
  /** SQNR (dB) of the first output over every frame: Σ float² / Σ Δ² (∞ when equal). */
  sqnrDb: number;
}

/** Options of {@link closedLoop}. */
export interface ClosedLoopOptions {
  /** The state pairs (default: {@link statePairs} of the float model). */
  pairs?: readonly StatePair[];
  /** At most this many frames, from the first (default all). */
  frames?: number;
  /** The registry the quantized model's quantizers are in (plugins' `FakeQuant` nodes). */
  registry?: Registry;
}

/** One sample's inputs (batch 1), and each state input's sample axis. */
function sample(data: Dataset, i: number): Record<string, TensorData> {
  return { ...sliceBatch(data, i, i + 1), ...(data.whole ?? {}) };
}

/**
 * Runs the float and the quantized model over the streams of the data, frame by frame, each fed
 * its own state outputs back, and compares their first outputs. A frame starts a new stream
 * unless its state inputs are what the float model wrote at the frame before (within 1e-5 of
 * their peak); a stream starts from the state its first frame gives.
 *
 * @param float the float model
 * @param quant the quantized model (its runnable graph), with the same inputs and outputs
 * @param data frames with their states (e.g. calibration data)
 * @param opts state pairs, a frame limit, the registry
 * @returns the streams, frames, the first output's largest and mean |Δ| and its SQNR
 *
 * @example
 * ```ts
 * import { closedLoop } from "@lowbit/pipeline";
 * // y = x + h, hn = y: a running sum. The "quantized" model adds 0.5 to each step.
 * const v = (name: string) => ({ name, dtype: "float32" as const, shape: ["n", 1] });
 * const model = (extra: number) => ({
 *   irVersion: 8, opsets: [{ domain: "", version: 17 }], producerName: "", producerVersion: "",
 *   metadata: {},
 *   graph: { name: "g", valueInfo: new Map(), inputs: [v("x"), v("h")], outputs: [v("y"), v("hn")],
 *     initializers: new Map([["e", { dtype: "float32" as const, shape: [1], data: Float32Array.of(extra) }]]),
 *     nodes: [
 *       { name: "a", op: "Add", domain: "", inputs: ["x", "h"], outputs: ["s"], attrs: {} },
 *       { name: "b", op: "Add", domain: "", inputs: ["s", "e"], outputs: ["y"], attrs: {} },
 *       { name: "c", op: "Identity", domain: "", inputs: ["y"], outputs: ["hn"], attrs: {} },
 *     ] } });
 * // Three frames of one stream: x = 1, 1, 1 with h = 0, 1, 2 (the float model's running sum).
 * const f = (...a: number[]) => ({ dtype: "float32" as const, shape: [3, 1], data: Float32Array.from(a) });
 * const data = { inputs: { x: f(1, 1, 1), h: f(0, 1, 2) }, count: 3 };
 * const r = await closedLoop(model(0), model(0.5), data);
 * // Fed its own state, the error grows by 0.5 a frame: 0.5, 1, 1.5.
 * if (r.streams !== 1 || r.maxAbs !== 1.5 || r.meanAbs !== 1) throw new Error(JSON.stringify(r));
 * // float outputs 1, 2, 3 (Σ² = 14), errors 0.5, 1, 1.5 (Σ² = 3.5): 10·log10(4) dB
 * if (Math.abs(r.sqnrDb - 10 * Math.log10(4)) > 1e-9) throw new Error(String(r.sqnrDb));
 * ```
 */
export async function closedLoop(
  float: Model,
  quant: Model,
  data: Dataset,
  opts: ClosedLoopOptions = {},
): Promise<ClosedLoop> {
  const pairs = opts.pairs ?? statePairs(float);
  const reg = opts.registry ? { registry: opts.registry } : {};
  const fe = createExecutor(float, reg), qe = createExecutor(quant, reg);
  const first = float.graph.outputs[0].name;
  const frames = Math.min(data.count, opts.frames ?? data.count);
  let streams = 0, maxAbs = 0, sum = 0, signal = 0, noise = 0;
  let fState: Record<string, TensorData> | undefined,
    qState: Record<string, TensorData> | undefined;
  for (let i = 0; i < frames; i++) {
    const given = sample(data, i);
    const continues = fState !== undefined && pairs.length > 0 &&
      pairs.every((p) => equalValues(given[p.input], fState![p.input]));
    if (!continues) {
      streams++;
      fState = qState = Object.fromEntries(pairs.map((p) => [p.input, given[p.input]]));
    }
    const fo = await fe.run({ ...given, ...fState });
    const qo = await qe.run({ ...given, ...qState });
    const a = fo[first].data as Float32Array, b = qo[first].data as Float32Array;
    for (let k = 0; k < a.length; k++) {
      const d = Math.abs(a[k] - b[k]);
      maxAbs = Math.max(maxAbs, d);
      sum += d / a.length;
      signal += a[k] * a[k];
      noise += d * d;
    }
    fState = Object.fromEntries(pairs.map((p) => [p.input, fo[p.output]]));
    qState = Object.fromEntries(pairs.map((p) => [p.input, qo[p.output]]));
  }
  return {
    streams,
    frames,
    maxAbs,
    meanAbs: frames ? sum / frames : 0,
    sqnrDb: noise === 0 ? Infinity : 10 * Math.log10(signal / noise),
  };
}

/**
 * What the accuracy guard measures, for both of its criteria (output SQNR, `guard.ts`; max |Δ|,
 * `guard_delta.ts`): the first output of a quantized result against the float model on the
 * guard's data — over a batch of samples, or, for a stateful model (state outputs fed back as
 * inputs), closed loop over the data's streams, each model fed its own state (`closedLoop`).
 *
 * @module
 */

import { createExecutor, type Model, type TensorData } from "@lowbit/graph";
import { type Dataset, sliceBatch } from "./dataset.ts";
import { sqnrDb } from "./metrics.ts";
import type { QuantizeResult } from "./quantize.ts";
import { activationTransform, runnableModel } from "./simulate.ts";
import { closedLoop, statePairs } from "./stateful.ts";

/** The errors of a quantized model's first output against float. */
export interface OutputError {
  /** Output SQNR in dB. */
  sqnrDb: number;
  /** Largest absolute difference. */
  maxAbs: number;
}

/** The float reference the guard compares quantized results with. */
export interface FloatComparison {
  /** Samples in `batch`. */
  samples: number;
  /** The first `samples` samples of the data (whole inputs included). */
  batch: Record<string, TensorData>;
  /** The float model's first output on `batch`. */
  ref: Float32Array;
  /** Frames measured closed loop for a stateful model; 0 for a stateless one. */
  loopFrames: number;
  /** The first output's errors of a quantized result (closed loop when `loopFrames`). */
  measure(r: QuantizeResult): Promise<OutputError>;
}

/**
 * The float reference on the guard's data.
 *
 * @param float the prepared float model
 * @param data the guard's data
 * @param o samples of a stateless model (default 32), frames of a stateful one (default 128)
 * @returns the batch, the float output, and the measure
 *
 * @example
 * ```ts
 * import { compareWithFloat, quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnxFile } from "@lowbit/graph";
 * const model = await readOnnxFile("fixtures/digits/mlp.onnx");
 * const calib = { inputs: { x: readNpy(await Deno.readFile("fixtures/digits/calib_x.npy")) }, count: 64 };
 * const r = await quantize({ model, calib });
 * const c = await compareWithFloat(r.prepared, calib, { samples: 8 });
 * const e = await c.measure(r);
 * if (c.samples !== 8 || c.loopFrames !== 0 || !(e.maxAbs > 0 && e.sqnrDb > 20)) throw new Error();
 * ```
 */
export async function compareWithFloat(
  float: Model,
  data: Dataset,
  o: { samples?: number; loopFrames?: number } = {},
): Promise<FloatComparison> {
  const samples = Math.min(data.count, o.samples ?? 32);
  const batch = sliceBatch(data, 0, samples);
  const out = float.graph.outputs[0].name;
  const ref = (await createExecutor(float).run(batch))[out].data as Float32Array;
  const loopFrames = statePairs(float).length && data.count > 1
    ? Math.min(data.count, o.loopFrames ?? 128)
    : 0;
  return {
    samples,
    batch,
    ref,
    loopFrames,
    async measure(r) {
      const qm = r.quantized;
      if (loopFrames) {
        const c = await closedLoop(float, runnableModel(qm), data, {
          frames: loopFrames,
          registry: qm.registry,
        });
        return { sqnrDb: c.sqnrDb, maxAbs: c.maxAbs };
      }
      const y = (await createExecutor(qm.model, { registry: qm.registry }).run(batch, {
        transform: activationTransform(qm, batch),
      }))[out].data as Float32Array;
      let maxAbs = 0;
      for (let i = 0; i < ref.length; i++) maxAbs = Math.max(maxAbs, Math.abs(ref[i] - y[i]));
      return { sqnrDb: sqnrDb(ref, y), maxAbs };
    },
  };
}

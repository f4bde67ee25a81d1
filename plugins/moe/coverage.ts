/**
 * Tokens seen per expert during calibration: naturally routed (the router's TopK indices) and
 * actually received by the expert in the calibration graph (its input rows; dense dispatch: every
 * token of the batch).
 *
 * @module
 */

import type { TensorValue } from "@lowbit/core";
import { createExecutor, type Model } from "@lowbit/graph";
import type { MoEInfo } from "./detect.ts";

/** Tokens per expert of one router. */
export interface RouterCoverage {
  /** The router's layer. */
  readonly router: string;
  /** Tokens the router sends to each expert (by expert index). */
  readonly natural: number[];
  /** Rows each expert receives in the calibration graph (by expert index). */
  readonly seen: number[];
}

/**
 * Counts the tokens per expert over calibration batches, running `model` (the calibration graph).
 *
 * @param model the model whose graph the calibration runs (balanced or not)
 * @param info detection on that model's float graph (the same value names)
 * @param batches the calibration batches (model inputs by name)
 * @returns one record per router
 *
 * @example
 * ```ts
 * import { countTokens, detectMoE } from "@lowbit/moe";
 * import { readNpy, readOnnxFile } from "@lowbit/graph";
 * const dir = new URL("../../fixtures/moe/", import.meta.url);
 * const m = await readOnnxFile(new URL("moe_sparse.onnx", dir).pathname);
 * const x = readNpy(Deno.readFileSync(new URL("calib_x.npy", dir)));
 * const [c] = await countTokens(m, detectMoE(m.graph), [{ x }]);
 * if (c.natural.join() !== "65,50,0,3" || c.seen.join() !== "65,50,0,3") throw new Error();
 * ```
 */
export async function countTokens(
  model: Model,
  info: MoEInfo,
  batches: Iterable<Record<string, TensorValue>> | AsyncIterable<Record<string, TensorValue>>,
): Promise<RouterCoverage[]> {
  const exec = createExecutor(model);
  const out = info.routers.map((r) => {
    const n = Math.max(r.numExperts ?? 0, ...r.experts.map((e) => e.index + 1));
    return { router: r.node, natural: new Array(n).fill(0), seen: new Array(n).fill(0) };
  });
  const watch = new Set<string>();
  for (const r of info.routers) {
    watch.add(r.topkIndices);
    for (const e of r.experts) watch.add(e.input);
  }
  for await (const inputs of batches) {
    const got = new Map<string, TensorValue>();
    await exec.run(inputs as never, { watch, observe: (n, t) => void got.set(n, t) });
    info.routers.forEach((r, i) => {
      const idx = got.get(r.topkIndices);
      if (idx) {
        for (const v of Array.from(idx.data as ArrayLike<bigint>)) out[i].natural[Number(v)]++;
      }
      for (const e of r.experts) out[i].seen[e.index] += got.get(e.input)?.shape[0] ?? 0;
    });
  }
  return out;
}

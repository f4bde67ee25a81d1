/**
 * The mixed-precision search for one whole graph given in code: the pipeline's search with the
 * graph's inputs as `whole` inputs (one sample, every node, the edge index kept int64) and the
 * plugin's search groups (update-MLP ties) from the pipeline's context. From the command line,
 * `lowbit quantize --whole x,edge_index --preset mixed` does the same (`createMixedSearch` passes
 * the dataset's whole inputs).
 *
 * @module
 */

import type { TensorData } from "@lowbit/graph";
import type { MixedSearch, MixedSearchChoice, MixedSearchContext } from "@lowbit/pipeline";
import { groupPoints, parseMixedOptions, searchMixedPrecision } from "@lowbit/pipeline/search";

/**
 * A `--preset mixed` search over a whole graph (see the module documentation).
 *
 * @param graph the graph inputs (node features, adjacency or edge index), unsliced
 * @param onResult receives the allocation (candidate per layer)
 * @returns the search, for `quantize({ preset: "mixed", mixedSearch })`
 *
 * @example
 * ```ts
 * import { graphMixedSearch } from "@lowbit/gnn";
 * const search = graphMixedSearch({});
 * if (typeof search !== "function") throw new Error();
 * ```
 */
export function graphMixedSearch(
  graph: Readonly<Record<string, TensorData>>,
  onResult?: (allocation: Record<string, string>) => void,
): MixedSearch {
  return async (ctx: MixedSearchContext): Promise<MixedSearchChoice> => {
    const s = parseMixedOptions(ctx.options);
    const result = await searchMixedPrecision({
      model: ctx.model!,
      calib: {},
      whole: graph, // one sample, never cut (the edge index stays int64)
      candidates: s.candidates,
      activationFormats: s.activationFormats,
      metric: s.metric,
      strategy: s.strategy,
      budgets: s.budgets,
      tolerance: s.tolerance,
      loss: s.loss,
      seed: s.seed,
      ties: s.ties,
      extraTies: (ctx.groups ?? []).flatMap((g) => (g.ties ?? []).map((t) => [...t])),
      layerCandidates: Object.assign({}, ...(ctx.groups ?? []).map((g) => g.candidates ?? {})),
      points: groupPoints(ctx.groups),
      pointBits: s.pointBits,
      measure: async (specs, acts) => 1 - await ctx.measure(specs, acts),
      progress: (f) => ctx.progress(f),
    });
    onResult?.(result.allocation);
    return {
      weights: result.specs,
      activations: result.activations,
      ...(result.points ? { points: result.points.specs } : {}),
      warnings: result.warnings,
    };
  };
}

/**
 * The mixed-precision search for one whole graph: the pipeline's `createMixedSearch` slices its
 * calibration feeds to `samples` (metrics) and 200 (measures) rows of axis 0, which cuts a
 * graph's nodes (and breaks `A·X`); this one runs the same search with every node of the one
 * graph sample, and the plugin's search groups (update-MLP ties) from the pipeline's context.
 *
 * @module
 */

import type { TensorData } from "@lowbit/graph";
import type { MixedSearch, MixedSearchChoice, MixedSearchContext } from "@lowbit/pipeline";
import { parseMixedOptions, searchMixedPrecision } from "@lowbit/pipeline/search";

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
    // Rows of the largest input: every node (the edge index has 2).
    const rows = Math.max(1, ...Object.values(graph).map((t) => t.shape[0] ?? 1));
    const result = await searchMixedPrecision({
      model: ctx.model!,
      calib: graph,
      candidates: s.candidates,
      activationFormats: s.activationFormats,
      metric: s.metric,
      strategy: s.strategy,
      budgets: s.budgets,
      tolerance: s.tolerance,
      loss: s.loss,
      samples: rows,
      measureSamples: rows,
      seed: s.seed,
      ties: s.ties,
      extraTies: (ctx.groups ?? []).flatMap((g) => (g.ties ?? []).map((t) => [...t])),
      layerCandidates: Object.assign({}, ...(ctx.groups ?? []).map((g) => g.candidates ?? {})),
      measure: async (specs, acts) => 1 - await ctx.measure(specs, acts),
      progress: (f) => ctx.progress(f),
    });
    onResult?.(result.allocation);
    return { weights: result.specs, activations: result.activations, warnings: result.warnings };
  };
}

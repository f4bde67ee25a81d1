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
import { createMixedSearch } from "@lowbit/pipeline/search";

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
  return (ctx: MixedSearchContext): Promise<MixedSearchChoice> =>
    createMixedSearch({
      model: ctx.model!,
      calib: { inputs: {}, count: 1, whole: graph }, // one sample, never cut (int64 edge index)
      onResult: onResult && ((r) => onResult(r.allocation)),
    })(ctx);
}

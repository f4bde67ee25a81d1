/**
 * Node in-degrees from a graph input (the adjacency or the edge index), their bins, and the
 * protected set (the top fraction of nodes by degree). Bad graph inputs (a non-square
 * adjacency, an edge index out of range) are `LowbitError`s naming the input.
 *
 * @module
 */

import { LowbitError, type TensorValue } from "@lowbit/core";
import type { DegreeSource } from "./detect.ts";

/**
 * In-degree of each of `nodes` nodes: the off-diagonal nonzeros of each adjacency row (A[dst,
 * src], so row i counts the messages node i receives from other nodes), or how often each node
 * is a destination in the edge index (row `source.row` of a `[2, edges]` tensor, or the whole of
 * a 1-D one). Self-loops are not counted in either form: the diagonal of a normalised
 * `D^-½(A + I)D^-½` is skipped, as the loops an edge-list export adds in the graph (a `Concat`
 * with a `Range`) are not in its edge index — so the dense and edge-list exports of one model
 * put each node in the same degree bin.
 *
 * @param t the adjacency or the edge index
 * @param source what `t` is (from {@link findAggregations})
 * @param nodes the number of nodes (rows of the features)
 * @returns one degree per node
 *
 * @example
 * ```ts
 * import { nodeDegrees } from "@lowbit/gnn";
 * import assert from "node:assert/strict";
 * // edges 0→1, 2→1, 1→0: node 0 receives one message, node 1 two, node 2 none
 * const ei = { dtype: "int64", shape: [2, 3], data: BigInt64Array.of(0n, 2n, 1n, 1n, 1n, 0n) };
 * const d = nodeDegrees(ei, { input: "edge_index", kind: "edges", row: 1 }, 3);
 * assert.deepEqual([...d], [1, 2, 0]);
 * // the same graph as A + I (A[dst, src]): the diagonal (self-loops) is not counted
 * const adj = { dtype: "float32", shape: [3, 3], data: Float32Array.of(1, 1, 0, 1, 1, 1, 0, 0, 1) };
 * assert.deepEqual([...nodeDegrees(adj, { input: "adj", kind: "adjacency", row: -1 }, 3)], [1, 2, 0]);
 * ```
 */
export function nodeDegrees(t: TensorValue, source: DegreeSource, nodes: number): Int32Array {
  const subject = { tensor: source.input };
  const deg = new Int32Array(nodes);
  if (source.kind === "adjacency") {
    if (t.shape.length !== 2 || t.shape[0] !== t.shape[1]) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `the adjacency must be square (nodes × nodes), it is [${t.shape.join(", ")}]`,
        subject,
      );
    }
    if (t.shape[0] !== nodes) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `the adjacency is ${t.shape[0]} × ${t.shape[1]} but the features have ${nodes} nodes`,
        subject,
      );
    }
    for (let i = 0; i < nodes; i++) {
      let c = 0;
      for (let j = 0; j < nodes; j++) if (j !== i && Number(t.data[i * nodes + j]) !== 0) c++;
      deg[i] = c;
    }
    return deg;
  }
  let start = 0, count = t.data.length;
  if (source.row >= 0) {
    if (t.shape.length !== 2 || source.row >= t.shape[0]) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `the edge index must be [2, edges] with destinations in row ${source.row}, it is ` +
          `[${t.shape.join(", ")}]`,
        subject,
      );
    }
    count = t.shape[1];
    start = source.row * count;
  }
  for (let e = 0; e < count; e++) {
    const v = Number(t.data[start + e]);
    if (!Number.isInteger(v) || v < 0 || v >= nodes) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `edge ${e} has destination ${v}, outside the graph's ${nodes} nodes (0..${nodes - 1})`,
        subject,
      );
    }
    deg[v]++;
  }
  return deg;
}

/**
 * Degree bin of a degree: bins `[0, 2)`, `[2, 4)`, `[4, 8)`, ... (powers of two), the last of
 * `bins` open-ended.
 *
 * @param degree an in-degree
 * @param bins number of bins (≥ 1)
 * @returns the bin, 0..bins-1
 *
 * @example
 * ```ts
 * import { degreeBin } from "@lowbit/gnn";
 * import assert from "node:assert/strict";
 * assert.deepEqual([0, 1, 2, 3, 4, 7, 8, 387].map((d) => degreeBin(d, 4)), [0, 0, 1, 1, 2, 2, 3, 3]);
 * ```
 */
export function degreeBin(degree: number, bins: number): number {
  if (degree < 2) return 0;
  return Math.min(bins - 1, Math.floor(Math.log2(degree)));
}

/**
 * The protected nodes: the top `fraction` of nodes by degree — the k = ceil(fraction × nodes)
 * largest degrees, every node tied with the k-th included.
 *
 * @param degrees one degree per node
 * @param fraction 0..1 (0: none)
 * @returns 1 for a protected node, else 0
 *
 * @example
 * ```ts
 * import { protectedNodes } from "@lowbit/gnn";
 * import assert from "node:assert/strict";
 * assert.deepEqual([...protectedNodes(Int32Array.of(1, 9, 3, 9, 5), 0.2)], [0, 1, 0, 1, 0]);
 * ```
 */
export function protectedNodes(degrees: Int32Array, fraction: number): Uint8Array {
  const out = new Uint8Array(degrees.length);
  const k = Math.min(degrees.length, Math.ceil(fraction * degrees.length - 1e-9));
  if (k <= 0) return out;
  const sorted = Int32Array.from(degrees).sort();
  const threshold = sorted[sorted.length - k];
  for (let i = 0; i < degrees.length; i++) out[i] = degrees[i] >= threshold ? 1 : 0;
  return out;
}

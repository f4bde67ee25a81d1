// Private: the row view behind block and row granularities. A row is the run of elements
// along `axis` (merged with the `flatten` axes right after it) for one index of every other
// axis; rows are numbered in row-major order of the other axes.

import { LowbitError } from "../errors.ts";
import type { BlockLayout, Granularity } from "../types.ts";
import { normalizeAxis } from "./_layout.ts";

/** Rows of a tensor: `index[r * len + j]` is the flat index of element j of row r. */
export interface Rows {
  /** Number of rows. */
  rows: number;
  /** Elements per row. */
  len: number;
  /** Flat element index of (row, position). */
  index: Int32Array;
}

/**
 * `shape` as `[outer, len, inner]`: the axes before a block / row granularity's axis, the axis
 * with the axes merged into it, the axes after (a scalar is `[1, 1, 1]`).
 */
export function rowLayout(
  shape: readonly number[],
  g: Extract<Granularity, { kind: "block" | "row" }>,
  name?: string,
): BlockLayout {
  const rank = shape.length;
  if (rank === 0) return { outer: 1, len: 1, inner: 1 };
  const a = normalizeAxis(g.axis, rank, name);
  const f = g.kind === "block" ? g.flatten ?? 0 : 0;
  if (!Number.isInteger(f) || f < 0 || a + f >= rank) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `block granularity merges ${f} axes after axis ${a}, but the tensor has rank ${rank}`,
      name === undefined ? {} : { tensor: name },
    );
  }
  let outer = 1, len = 1, inner = 1;
  for (let i = 0; i < a; i++) outer *= shape[i];
  for (let i = a; i <= a + f; i++) len *= shape[i];
  for (let i = a + f + 1; i < rank; i++) inner *= shape[i];
  return { outer, len, inner };
}

/** The row view of `shape` along a block / row granularity's axis. */
export function rowsOf(
  shape: readonly number[],
  g: Extract<Granularity, { kind: "block" | "row" }>,
  name?: string,
): Rows {
  if (shape.length === 0) return { rows: 1, len: 1, index: Int32Array.of(0) };
  const { outer, len, inner } = rowLayout(shape, g, name);
  const rows = len === 0 ? 0 : outer * inner;
  const index = new Int32Array(outer * len * inner);
  for (let o = 0, k = 0; o < outer; o++) {
    const base = o * len * inner;
    for (let i = 0; i < inner; i++) {
      for (let j = 0, flat = base + i; j < len; j++, flat += inner) index[k++] = flat;
    }
  }
  return { rows, len, index };
}

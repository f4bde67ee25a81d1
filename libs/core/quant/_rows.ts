// Private: the row view behind block and row granularities. A row is the run of elements
// along `axis` (merged with the `flatten` axes right after it) for one index of every other
// axis; rows are numbered in row-major order of the other axes.

import { LowbitError } from "../errors.ts";
import type { Granularity } from "../types.ts";
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

/** The row view of `shape` along a block / row granularity's axis. */
export function rowsOf(
  shape: readonly number[],
  g: Extract<Granularity, { kind: "block" | "row" }>,
  name?: string,
): Rows {
  const rank = shape.length;
  if (rank === 0) return { rows: 1, len: 1, index: Int32Array.of(0) };
  const a = normalizeAxis(g.axis, rank, name);
  const f = g.kind === "block" ? g.flatten ?? 0 : 0;
  if (!Number.isInteger(f) || f < 0 || a + f >= rank) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `block granularity merges ${f} axes after axis ${a}, but the tensor has rank ${rank}`,
      name === undefined ? {} : { tensor: name },
    );
  }
  const numel = shape.reduce((x, y) => x * y, 1);
  let len = 1;
  for (let i = a; i <= a + f; i++) len *= shape[i];
  const rows = len === 0 ? 0 : numel / len;
  const index = new Int32Array(numel);
  // Strides of the row-major tensor, and of the run (inside a row) / the other axes (row number).
  const stride = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) stride[i] = s, s *= shape[i];
  const idx = new Array<number>(rank).fill(0);
  for (let flat = 0; flat < numel; flat++) {
    let r = 0, j = 0;
    for (let i = 0; i < rank; i++) {
      if (i >= a && i <= a + f) j = j * shape[i] + idx[i];
      else r = r * shape[i] + idx[i];
    }
    index[r * len + j] = flat;
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
  return { rows, len, index };
}

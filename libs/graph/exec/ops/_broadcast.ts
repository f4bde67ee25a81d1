// numpy broadcasting: output shapes, and a plan that reduces a broadcast over
// any ranks to runs of an innermost loop whose operand strides are 0 or 1.

import { LowbitError } from "@lowbit/core";
import type { Node } from "../../ir.ts";

/** The numpy broadcast of several shapes; throws naming the node when incompatible. */
export function broadcastShapes(shapes: readonly (readonly number[])[], node: Node): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i];
      const o = out[off + i];
      if (d === o || d === 1) continue;
      if (o === 1) out[off + i] = d;
      else {
        throw new LowbitError(
          "SHAPE_MISMATCH",
          `${node.op}: shapes ${shapes.map((x) => `[${x}]`).join(", ")} do not broadcast`,
          { node: node.name },
        );
      }
    }
  }
  return out;
}

/**
 * A broadcast iteration plan: `outer` runs of `inner` elements; for run r the
 * operand k starts at `offsets[k][r]` and advances by `steps[k]` (0 or 1).
 */
export interface BroadcastPlan {
  /** Output shape. */
  shape: number[];
  /** Elements per run. */
  inner: number;
  /** Number of runs. */
  outer: number;
  /** Per operand: element step inside a run (0 or 1). */
  steps: number[];
  /** Per operand: start offset of each run. */
  offsets: Int32Array[];
}

/** Plans the broadcast of `shapes` to `out`. */
export function planBroadcast(
  shapes: readonly (readonly number[])[],
  out: readonly number[],
): BroadcastPlan {
  const rank = out.length;
  const k = shapes.length;
  // Padded shapes and strides (0 on broadcast dims).
  const st: number[][] = shapes.map((s) => {
    const padded = new Array<number>(rank - s.length).fill(1).concat(s);
    const r = new Array<number>(rank);
    let acc = 1;
    for (let i = rank - 1; i >= 0; i--) {
      r[i] = padded[i] === 1 && out[i] !== 1 ? 0 : acc;
      acc *= padded[i];
    }
    return r;
  });
  // Collapse adjacent dims where every operand is contiguous across them.
  const dims: number[] = [];
  const cst: number[][] = shapes.map(() => []);
  for (let i = 0; i < rank; i++) {
    if (out[i] === 1) continue;
    const last = dims.length - 1;
    if (
      last >= 0 &&
      st.every((s, j) => cst[j][last] === s[i] * out[i])
    ) {
      dims[last] *= out[i];
      for (let j = 0; j < k; j++) cst[j][last] = st[j][i];
    } else {
      dims.push(out[i]);
      for (let j = 0; j < k; j++) cst[j].push(st[j][i]);
    }
  }
  if (dims.length === 0) {
    return {
      shape: [...out],
      inner: 1,
      outer: 1,
      steps: shapes.map(() => 0),
      offsets: shapes.map(() => new Int32Array(1)),
    };
  }
  const nd = dims.length;
  let inner = dims[nd - 1];
  let steps = cst.map((s) => s[nd - 1]);
  let outerDims = dims.slice(0, nd - 1);
  let outerSt = cst.map((s) => s.slice(0, nd - 1));
  // An inner stride other than 0/1 cannot happen after collapsing except when a
  // dim is contiguous for some operands only; fall back to inner runs of 1.
  if (steps.some((s) => s !== 0 && s !== 1)) {
    outerDims = dims;
    outerSt = cst;
    inner = 1;
    steps = shapes.map(() => 0);
  }
  let outer = 1;
  for (const d of outerDims) outer *= d;
  const offsets = shapes.map(() => new Int32Array(outer));
  const idx = new Array<number>(outerDims.length).fill(0);
  const cur = new Array<number>(k).fill(0);
  for (let r = 0; r < outer; r++) {
    for (let j = 0; j < k; j++) offsets[j][r] = cur[j];
    for (let d = outerDims.length - 1; d >= 0; d--) {
      idx[d]++;
      for (let j = 0; j < k; j++) cur[j] += outerSt[j][d];
      if (idx[d] < outerDims[d]) break;
      for (let j = 0; j < k; j++) cur[j] -= outerSt[j][d] * outerDims[d];
      idx[d] = 0;
    }
  }
  return { shape: [...out], inner, outer, steps, offsets };
}

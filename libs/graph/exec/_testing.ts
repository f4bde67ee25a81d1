// Test helpers: deterministic inputs, closeness checks that name the first bad position.

import type { TensorData } from "../ir.ts";

/** A deterministic float32 tensor with values in [-amp, amp]. */
export function pattern(shape: number[], seed = 1, amp = 1): TensorData {
  let n = 1;
  for (const d of shape) n *= d;
  const data = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = ((s / 2 ** 32) * 2 - 1) * amp;
  }
  return { dtype: "float32", shape, data };
}

/** A float32 tensor of the given values. */
export const f32 = (shape: number[], v: ArrayLike<number>): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(v),
});

/** Deterministic values in [−amp, amp) (the generator of `pattern`, as a plain array). */
export function values(n: number, seed: number, amp: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 31 - 1) * amp;
  });
}

/** Largest absolute and relative differences, and how many elements fail rtol/atol. */
export interface CloseReport {
  maxAbs: number;
  maxRel: number;
  bad: number;
  firstBad: number;
}

/** Compares `a` to the reference `b` elementwise: |a − b| ≤ atol + rtol·|b|. */
export function compare(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  rtol: number,
  atol: number,
): CloseReport {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let maxAbs = 0, maxRel = 0, bad = 0, firstBad = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= atol + rtol * Math.abs(b[i]))) {
      bad++;
      if (firstBad < 0) firstBad = i;
    }
    if (d > maxAbs || d !== d) maxAbs = d;
    if (Math.abs(b[i]) > atol) maxRel = Math.max(maxRel, d / Math.abs(b[i]));
  }
  return { maxAbs, maxRel, bad, firstBad };
}

/** Throws unless `a` is close to `b`, naming the first bad position and the shapes. */
export function assertClose(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  rtol: number,
  atol: number,
  what = "",
): CloseReport {
  const r = compare(a, b, rtol, atol);
  if (r.bad > 0) {
    const i = r.firstBad;
    throw new Error(
      `${what}: ${r.bad}/${a.length} elements differ beyond rtol ${rtol} atol ${atol}; ` +
        `first at ${i}: ${a[i]} vs ${b[i]}; max abs ${r.maxAbs}, max rel ${r.maxRel}`,
    );
  }
  return r;
}

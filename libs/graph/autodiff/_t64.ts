// Private float64 tensor helpers for the autodiff interpreter.
// NOTE: everything here is plain loops over row-major Float64Arrays; clarity over speed.

import { size, strides } from "../exec/_tensor.ts";

export { size, strides };

/** A dense row-major float64 tensor. */
export interface T64 {
  shape: number[];
  data: Float64Array;
}

export function t64(data: Float64Array, shape: readonly number[]): T64 {
  return { shape: [...shape], data };
}

export function zeros(shape: readonly number[]): T64 {
  return { shape: [...shape], data: new Float64Array(size(shape)) };
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

export function map(a: T64, f: (x: number) => number): T64 {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = f(a.data[i]);
  return { shape: [...a.shape], data: out };
}

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1, db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`cannot broadcast [${a}] with [${b}]`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Index map from an output of `outShape` into a broadcast input of `inShape`. */
export function broadcastIndex(
  inShape: readonly number[],
  outShape: readonly number[],
): Int32Array {
  const n = size(outShape);
  const idx = new Int32Array(n);
  const r = outShape.length;
  const ins = strides(inShape);
  const off = r - inShape.length;
  const coord = new Array<number>(r).fill(0);
  for (let i = 0; i < n; i++) {
    let j = 0;
    for (let d = off; d < r; d++) if (inShape[d - off] !== 1) j += coord[d] * ins[d - off];
    idx[i] = j;
    for (let d = r - 1; d >= 0; d--) {
      if (++coord[d] < outShape[d]) break;
      coord[d] = 0;
    }
  }
  return idx;
}

export function zip(a: T64, b: T64, f: (x: number, y: number) => number): T64 {
  const na = a.data.length, nb = b.data.length;
  // Fast paths: equal shapes, or one operand broadcast along leading axes only (bias, scalar).
  if (sameShape(a.shape, b.shape)) {
    const out = new Float64Array(na);
    for (let i = 0; i < na; i++) out[i] = f(a.data[i], b.data[i]);
    return { shape: [...a.shape], data: out };
  }
  if (isTrailing(b.shape, a.shape)) {
    const out = new Float64Array(na);
    for (let i = 0; i < na; i++) out[i] = f(a.data[i], b.data[i % nb]);
    return { shape: [...a.shape], data: out };
  }
  if (isTrailing(a.shape, b.shape)) {
    const out = new Float64Array(nb);
    for (let i = 0; i < nb; i++) out[i] = f(a.data[i % na], b.data[i]);
    return { shape: [...b.shape], data: out };
  }
  const shape = broadcastShape(a.shape, b.shape);
  const ia = broadcastIndex(a.shape, shape), ib = broadcastIndex(b.shape, shape);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = f(a.data[ia[i]], b.data[ib[i]]);
  return { shape, data: out };
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Whether `small` broadcasts to `big` by repetition along leading axes only (bias, scalar). */
function isTrailing(small: readonly number[], big: readonly number[]): boolean {
  if (small.length > big.length) return false;
  let k = 0;
  while (k < small.length && small[k] === 1) k++;
  const off = big.length - small.length;
  for (let i = k; i < small.length; i++) if (small[i] !== big[off + i]) return false;
  return true;
}

/** Sums `g` (of a broadcast shape) back down to `shape`. */
export function unbroadcast(g: T64, shape: readonly number[]): T64 {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const n = size(shape);
  if (isTrailing(shape, g.shape)) {
    const out = new Float64Array(n);
    for (let i = 0; i < g.data.length; i++) out[i % n] += g.data[i];
    return { shape: [...shape], data: out };
  }
  const idx = broadcastIndex(shape, g.shape);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < g.data.length; i++) out[idx[i]] += g.data[i];
  return { shape: [...shape], data: out };
}

export function transpose(a: T64, perm: readonly number[]): T64 {
  const r = a.shape.length;
  if (r === 2 && perm[0] === 1) {
    const [m, n] = a.shape;
    const out = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = a.data[i * n + j];
    return { shape: [n, m], data: out };
  }
  const outShape = perm.map((p) => a.shape[p]);
  const ins = strides(a.shape);
  const n = a.data.length;
  const out = new Float64Array(n);
  const coord = new Array<number>(r).fill(0);
  for (let i = 0; i < n; i++) {
    let j = 0;
    for (let d = 0; d < r; d++) j += coord[d] * ins[perm[d]];
    out[i] = a.data[j];
    for (let d = r - 1; d >= 0; d--) {
      if (++coord[d] < outShape[d]) break;
      coord[d] = 0;
    }
  }
  return { shape: outShape, data: out };
}

export function invPerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** Plain 2-D product: [m,k] × [k,n]. */
export function mm(
  a: Float64Array,
  b: Float64Array,
  m: number,
  k: number,
  n: number,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      if (av === 0) continue;
      const bo = p * n, oo = i * n;
      for (let j = 0; j < n; j++) out[oo + j] += av * b[bo + j];
    }
  }
  return out;
}

/** Reduces by summing over `axes` (normalised), keeping them as size 1. */
export function sumAxes(a: T64, axes: readonly number[]): T64 {
  const outShape = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return unbroadcast(a, outShape);
}

/** Broadcasts `a` up to `shape`. */
export function expand(a: T64, shape: readonly number[]): T64 {
  if (sameShape(a.shape, shape)) return { shape: [...shape], data: a.data.slice() };
  const idx = broadcastIndex(a.shape, shape);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = a.data[idx[i]];
  return { shape: [...shape], data: out };
}

export function add(a: T64, b: T64): T64 {
  return zip(a, b, (x, y) => x + y);
}

export function mul(a: T64, b: T64): T64 {
  return zip(a, b, (x, y) => x * y);
}

// *** erf in float64 ***
// NOTE: the series erf(x) = 2/√π · e^{-x²} · Σ 2ⁿ x^{2n+1} / (1·3···(2n+1)) has only positive terms,
// so it keeps full double precision (finite-difference tests need ~1e-15, not the 1e-7 of A&S 7.1.26).
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax, sum = ax;
  for (let n = 1; n < 1000; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  const v = (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
  return x < 0 ? -v : v;
}

// Private: the streaming per-channel histogram behind the percentile, MSE and
// KL calibrators.
//
// NOTE: each channel keeps `nFine` signed bins over [-R, R], where R is the
// smallest power of two >= max|x| seen so far (at least 2^-126). Zero is always
// a bin edge and R only grows by powers of two, so growing folds 2^j old bins
// into one new bin exactly, and two histograms merge exactly whatever order the
// data came in: streaming in any batches, or merging workers, gives bit for bit
// the one-pass histogram. The algorithms then work on `bins` (2048) bins over
// the exact observed range, resampled from the fine bins (see `resample`); the
// fine bins are between `oversample / 2` and `oversample` times narrower than
// the target bins, which keeps resampling error well inside one target bin.

import { LowbitError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { checkFinite, layoutOf } from "../quant/_layout.ts";

/** The histogram state of all channels. */
export interface Hist {
  readonly channels: number;
  /** Signed fine bins per channel (even). */
  readonly nFine: number;
  /** Per-channel power-of-two range, 0 before any data. */
  readonly R: Float64Array;
  /** `channels * nFine` counts. */
  readonly counts: Float64Array;
  /** Exact observed minimum / maximum per channel. */
  readonly min: Float64Array;
  readonly max: Float64Array;
}

/** An empty histogram. */
export function createHist(channels: number, nFine: number): Hist {
  return {
    channels,
    nFine,
    R: new Float64Array(channels),
    counts: new Float64Array(channels * nFine),
    min: new Float64Array(channels).fill(Infinity),
    max: new Float64Array(channels).fill(-Infinity),
  };
}

const MIN_R = 2 ** -126;

/** Smallest power of two >= a, at least 2^-126. */
export function pow2Range(a: number): number {
  if (!(a > MIN_R)) return MIN_R;
  let p = 2 ** Math.ceil(Math.log2(a));
  while (p < a) p *= 2;
  while (p / 2 >= a) p /= 2;
  return p;
}

/**
 * Per-channel min / max of a batch (channels along `axis`, or one channel),
 * checking it is finite and has `channels` channels.
 */
export function batchMinMax(
  t: Tensor,
  axis: number | undefined,
  channels: number | undefined,
  name: string,
): { min: Float64Array; max: Float64Array; channelOf: ChannelWalk } {
  checkFinite(t.data, name);
  const walk = channelWalk(t, axis, name);
  if (channels !== undefined && walk.channels !== channels) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `calibrator '${name}' saw ${channels} channels before, this batch has ${walk.channels} ` +
        `(shape [${t.shape}], axis ${axis})`,
    );
  }
  const min = new Float64Array(walk.channels).fill(Infinity);
  const max = new Float64Array(walk.channels).fill(-Infinity);
  walk.each((c, x) => {
    if (x < min[c]) min[c] = x;
    if (x > max[c]) max[c] = x;
  });
  return { min, max, channelOf: walk };
}

/** Iterates the elements of a batch with their channel. */
export interface ChannelWalk {
  readonly channels: number;
  each(f: (c: number, x: number) => void): void;
  /** Runs `f(c, start, count)` over contiguous runs of one channel. */
  runs(f: (c: number, start: number, count: number) => void): void;
}

/** The channel walk of `t` along `axis` (undefined: one channel). */
export function channelWalk(t: Tensor, axis: number | undefined, name: string): ChannelWalk {
  const L = layoutOf(
    t.shape,
    axis === undefined ? { kind: "tensor" } : { kind: "channel", axis },
    `calibrator '${name}' batch`,
  );
  const x = t.data;
  const runs = (f: (c: number, start: number, count: number) => void): void => {
    if (axis === undefined) return f(0, 0, x.length);
    let i = 0;
    for (let o = 0; o < L.outer; o++) {
      for (let d = 0; d < L.dim; d++, i += L.inner) f(d * L.dStride, i, L.inner);
    }
  };
  return {
    channels: L.count,
    runs,
    each(f: (c: number, x: number) => void): void {
      runs((c, start, count) => {
        for (let j = start; j < start + count; j++) f(c, x[j]);
      });
    },
  };
}

/** Grows channel `c` to range `R` (a power of two >= the current one). */
export function growTo(h: Hist, c: number, R: number): void {
  const old = h.R[c];
  if (R <= old) return;
  h.R[c] = R;
  if (old === 0) return;
  const f = R / old, n = h.nFine, half = n / 2, k = h.counts;
  // In place, no allocation: bin m moves to floor(m / f) <= m, which was read
  // already (m ascending), on either side of zero.
  const pos = c * n + half, neg = pos - 1;
  for (let m = 1; m < half; m++) {
    const j = Math.floor(m / f);
    k[pos + j] += k[pos + m];
    k[pos + m] = 0;
    k[neg - j] += k[neg - m];
    k[neg - m] = 0;
  }
}

/** Adds a (finite, already checked) batch. */
export function addBatch(h: Hist, t: Tensor, axis: number | undefined, name: string): void {
  if (t.data.length === 0) return;
  const { min, max, channelOf } = batchMinMax(t, axis, h.channels, name);
  for (let c = 0; c < h.channels; c++) {
    if (min[c] > max[c]) continue; // channel empty in this batch
    growTo(h, c, pow2Range(Math.max(-min[c], max[c])));
    if (min[c] < h.min[c]) h.min[c] = min[c];
    if (max[c] > h.max[c]) h.max[c] = max[c];
  }
  const n = h.nFine, half = n / 2, x = t.data, counts = h.counts;
  channelOf.runs((c, start, count) => {
    const inv = half / h.R[c], off = c * n;
    for (let j = start; j < start + count; j++) {
      let idx = Math.floor(x[j] * inv) + half;
      if (idx >= n) idx = n - 1;
      counts[off + idx]++;
    }
  });
}

/** Merges `b` into `a` (same channels and fine bins). */
export function mergeHist(a: Hist, b: Hist): void {
  const n = a.nFine;
  for (let c = 0; c < a.channels; c++) {
    if (b.R[c] === 0) continue;
    const R = Math.max(a.R[c], b.R[c]);
    growTo(a, c, R);
    // fold a copy of b's channel to R, then add
    const tmp = createHist(1, n);
    tmp.R[0] = b.R[c];
    tmp.counts.set(b.counts.subarray(c * n, (c + 1) * n));
    growTo(tmp, 0, R);
    for (let k = 0; k < n; k++) a.counts[c * n + k] += tmp.counts[k];
    a.min[c] = Math.min(a.min[c], b.min[c]);
    a.max[c] = Math.max(a.max[c], b.max[c]);
  }
}

/**
 * Channel `c` resampled to `bins` bins over `[0, max|x|]` (abs) or over
 * `[min, max]` (signed), assuming counts spread uniformly inside each fine bin
 * (clipped to the observed range).
 */
export function resample(h: Hist, c: number, bins: number, abs: boolean): {
  counts: Float64Array;
  lo: number;
  hi: number;
} {
  const n = h.nFine, half = n / 2, R = h.R[c], wf = R / half;
  const fine = h.counts.subarray(c * n, (c + 1) * n);
  let src: Float64Array, start: number, lo: number, hi: number;
  if (abs) {
    src = new Float64Array(half);
    for (let k = 0; k < half; k++) src[k] = fine[half + k] + fine[half - 1 - k];
    start = 0;
    lo = 0;
    hi = Math.max(-h.min[c], h.max[c]);
  } else {
    src = fine;
    start = -R;
    lo = h.min[c];
    hi = h.max[c];
  }
  const out = new Float64Array(bins);
  if (!(hi > lo)) {
    let total = 0;
    for (let k = 0; k < src.length; k++) total += src[k];
    out[0] = total;
    return { counts: out, lo, hi };
  }
  const wt = (hi - lo) / bins;
  for (let k = 0; k < src.length; k++) {
    const cnt = src[k];
    if (cnt === 0) continue;
    const a = Math.max(start + k * wf, lo), b = Math.min(start + (k + 1) * wf, hi);
    let j0 = Math.floor((a - lo) / wt);
    if (j0 >= bins) j0 = bins - 1;
    if (!(b > a)) {
      out[j0] += cnt;
      continue;
    }
    let j1 = Math.floor((b - lo) / wt);
    if (j1 >= bins) j1 = bins - 1;
    if (j0 === j1) {
      out[j0] += cnt;
      continue;
    }
    const scale = cnt / (b - a);
    for (let j = j0; j <= j1; j++) {
      const e0 = Math.max(a, lo + j * wt), e1 = Math.min(b, lo + (j + 1) * wt);
      if (e1 > e0) out[j] += scale * (e1 - e0);
    }
  }
  return { counts: out, lo, hi };
}

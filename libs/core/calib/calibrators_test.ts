import assert from "node:assert/strict";
import {
  type Calibrator,
  chooseQParams,
  createCalibrator,
  createRng,
  klLevels,
  klThreshold,
  LowbitError,
  lpSearchRange,
  mergeSnapshot,
  percentileRange,
  percentileThreshold,
  snapshotCalibrator,
  type Tensor,
  tensor,
} from "@lowbit/core";

const HIST = ["percentile", "mse", "kl"] as const;
const ALL = ["minmax", "ema-minmax", ...HIST] as const;

function gaussian(n: number, seed: number, sigma = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * sigma);
}

function laplace(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => {
    const u = rng.next() - 0.5;
    return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  });
}

/** Exact equal-width histogram over [lo, hi] (last bin closed), like numpy.histogram. */
function exactHist(x: Float32Array, lo: number, hi: number, bins = 2048): Float64Array {
  const h = new Float64Array(bins);
  for (const v of x) h[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))]++;
  return h;
}

function range(x: Float32Array): { lo: number; hi: number; amax: number } {
  let lo = Infinity, hi = -Infinity;
  for (const v of x) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return { lo, hi, amax: Math.max(-lo, hi) };
}

function feed(c: Calibrator, x: Float32Array, batch: number): Calibrator {
  for (let i = 0; i < x.length; i += batch) {
    const part = x.subarray(i, Math.min(x.length, i + batch));
    c.observe(tensor(part, [part.length]));
  }
  return c;
}

const isErr = (code: string, re: RegExp) => (e: unknown): boolean =>
  e instanceof LowbitError && e.code === code && re.test(e.message);

Deno.test("histogram calibrators stream to the exact-histogram thresholds within one bin", () => {
  for (
    const [dist, x] of [["gauss", gaussian(400_000, 1)], ["laplace", laplace(400_000, 2)]] as const
  ) {
    const { lo, hi, amax } = range(x);
    const abs = exactHist(Float32Array.from(x, Math.abs), 0, amax);
    const signed = exactHist(x, lo, hi);
    const w = amax / 2048;
    const near = (got: number, want: number, tol: number, what: string) =>
      // one bin, plus the float32 rounding of the returned range
      assert.ok(
        Math.abs(got - want) <= tol + Math.abs(want) * 2 ** -23,
        `${dist} ${what}: ${got} vs ${want}`,
      );
    // symmetric thresholds T come back as [-T, T] intersected with [min, max]
    const sym = (r: { min: Float32Array; max: Float32Array }, t: number, what: string) => {
      near(r.max[0], Math.min(t, hi), w, what);
      near(r.min[0], Math.max(-t, lo), w, what);
    };

    const kl = feed(createCalibrator("kl"), x, 65_536).result();
    sym(kl, klThreshold(abs, amax, { levels: klLevels("int8") }), "kl int8");
    const kl4 = feed(createCalibrator("kl", { format: "fp8_e4m3fn" }), x, 65_536).result();
    sym(kl4, klThreshold(abs, amax, { levels: klLevels("fp8_e4m3fn") }), "kl fp8");

    const pc = feed(createCalibrator("percentile"), x, 100_000).result();
    sym(pc, percentileThreshold(abs, amax, 99.99), "percentile");
    const pa = feed(createCalibrator("percentile", { mode: "affine", percentile: 99.9 }), x, 7_777)
      .result();
    const [ra, rb] = percentileRange(signed, lo, hi, 99.9);
    near(pa.min[0], ra, (hi - lo) / 2048, "percentile affine lo");
    near(pa.max[0], rb, (hi - lo) / 2048, "percentile affine hi");

    for (const format of ["int8", "fp4_e2m1fn"]) {
      const ms = feed(createCalibrator("mse", { format }), x, 50_000).result();
      const [, b] = lpSearchRange(signed, lo, hi, { format });
      near(ms.max[0], Math.min(b, hi), amax / 100, `mse ${format}`);
      near(ms.min[0], Math.max(-b, lo), amax / 100, `mse ${format}`);
    }
  }
});

Deno.test("histogram calibrators give the same result for any batching (re-binning is exact)", () => {
  // the range grows by 2^20 over the stream: the histogram re-bins many times
  const x = gaussian(60_000, 3);
  for (let i = 0; i < x.length; i++) x[i] *= 2 ** (20 * (i / x.length));
  for (const name of HIST) {
    for (const mode of ["symmetric", "affine"] as const) {
      if (name === "kl" && mode === "affine") continue;
      const opts = { mode, format: "int4", stride: 4 };
      const one = feed(createCalibrator(name, opts), x, x.length).result();
      const many = feed(createCalibrator(name, opts), x, 997).result();
      assert.deepEqual(many, one, `${name} ${mode}`);
      // reversed order: the range no longer grows, yet the result is identical
      const rev = feed(createCalibrator(name, opts), x.slice().reverse(), 4_999).result();
      assert.deepEqual(rev, one, `${name} ${mode} reversed`);
    }
  }
});

Deno.test("merging calibrators equals one pass over all the data", () => {
  const x = laplace(50_000, 4);
  const y = gaussian(30_000, 5, 40); // a worker that saw a much wider range
  const both = new Float32Array([...x, ...y]);
  for (const name of ["minmax", ...HIST]) {
    const a = feed(createCalibrator(name, { stride: 4 }), x, 10_000);
    const b = feed(createCalibrator(name, { stride: 4 }), y, 10_000);
    a.merge(b);
    const one = feed(createCalibrator(name, { stride: 4 }), both, both.length).result();
    assert.deepEqual(a.result(), one, name);
    // merging into an empty calibrator copies
    const e = createCalibrator(name, { stride: 4 });
    e.merge(feed(createCalibrator(name, { stride: 4 }), both, 33_333));
    assert.deepEqual(e.result(), one, `${name} into empty`);
  }
});

Deno.test("per-channel calibration equals per-tensor calibration of each channel", () => {
  const rows = 3000, C = 4;
  const rng = createRng(6);
  const data = Float32Array.from({ length: rows * C }, (_, i) => rng.normal() * (1 + (i % C)));
  const t: Tensor = tensor(data, [rows, C]);
  for (const name of ALL) {
    const pc = createCalibrator(name, { axis: 1, stride: 8 });
    pc.observe(t);
    const r = pc.result();
    assert.equal(r.min.length, C);
    for (let c = 0; c < C; c++) {
      const col = Float32Array.from({ length: rows }, (_, i) => data[i * C + c]);
      const one = createCalibrator(name, { stride: 8 });
      one.observe(tensor(col, [rows]));
      const want = one.result();
      assert.equal(r.min[c], want.min[0], `${name} channel ${c}`);
      assert.equal(r.max[c], want.max[0], `${name} channel ${c}`);
    }
    // channels on axis 0 of a transposed layout, negative axis
    const neg = createCalibrator(name, { axis: -1, stride: 8 });
    neg.observe(t);
    assert.deepEqual(neg.result(), r, `${name} axis -1`);
  }
});

Deno.test("calibrators return the observed range for constant and all-zero data", () => {
  for (const name of ALL) {
    const z = createCalibrator(name);
    z.observe(tensor(new Float32Array(100), [100]));
    const r = z.result();
    assert.deepEqual([r.min[0], r.max[0]], [0, 0], name);
    // an all-zero range gets the documented epsilon scale downstream
    const qp = chooseQParams(r, { format: "int8", granularity: { kind: "tensor" } });
    assert.equal(qp.scale[0], 2 ** -23);
    const c = createCalibrator(name);
    c.observe(tensor(new Float32Array(10).fill(-2.5), [10]));
    assert.deepEqual([c.result().min[0], c.result().max[0]], [-2.5, -2.5], name);
  }
});

Deno.test("ema-minmax moves by momentum and merges by batch-weighted average", () => {
  const a = createCalibrator("ema-minmax", { momentum: 0.25, mode: "affine" });
  a.observe(tensor(Float32Array.of(-4, 4), [2]));
  a.observe(tensor(Float32Array.of(0, 8), [2]));
  assert.deepEqual([a.result().min[0], a.result().max[0]], [-3, 5]);
  const b = createCalibrator("ema-minmax", { momentum: 0.25, mode: "affine" });
  b.observe(tensor(Float32Array.of(-1, 1), [2]));
  a.merge(b); // weights 2:1
  assert.deepEqual([a.result().min[0], a.result().max[0]], [-7 / 3, 11 / 3].map(Math.fround));
});

Deno.test("calibrators report bad input clearly", () => {
  assert.throws(
    () => createCalibrator("entropyy"),
    isErr(
      "UNKNOWN_NAME",
      /unknown calibrator 'entropyy'; registered: minmax, ema-minmax, percentile, mse, kl/,
    ),
  );
  assert.throws(
    () => createCalibrator("mse", { format: "fp9" }),
    isErr("UNKNOWN_NAME", /unknown format 'fp9'/),
  );
  for (const name of ALL) {
    const c = createCalibrator(name, { axis: 1 });
    assert.throws(() => c.result(), isErr("INVALID_ARGUMENT", /has observed no data/));
    c.observe(tensor(new Float32Array(0), [0, 3])); // an empty batch is a no-op
    assert.throws(() => c.result(), isErr("INVALID_ARGUMENT", /has observed no data/));
    assert.throws(
      () => c.observe(tensor(Float32Array.of(1, NaN, 3), [1, 3])),
      isErr("INVALID_TENSOR", /contains NaN at flat index 1/),
    );
    assert.throws(
      () => c.observe(tensor(Float32Array.of(1, -Infinity, 3), [1, 3])),
      isErr("INVALID_TENSOR", /contains -Infinity/),
    );
    assert.throws(
      () => c.observe(tensor(new Float32Array(3), [3])),
      isErr("INVALID_ARGUMENT", /axis 1 is out of range/),
    );
    c.observe(tensor(new Float32Array(6), [2, 3]));
    assert.throws(
      () => c.observe(tensor(new Float32Array(4), [2, 2])),
      isErr("SHAPE_MISMATCH", /saw 3 channels before, this batch has 2/),
    );
    assert.throws(
      () => c.merge(createCalibrator(name, { axis: 0 })),
      isErr("INVALID_ARGUMENT", /merge needs the same algorithm and options/),
    );
  }
  assert.throws(
    () => createCalibrator("minmax").merge(createCalibrator("kl")),
    isErr("INVALID_ARGUMENT", /cannot merge calibrator 'kl' into 'minmax'/),
  );
  assert.throws(
    () => createCalibrator("percentile", { percentile: 120 }),
    isErr("INVALID_ARGUMENT", /percentile must be in \(0, 100\]/),
  );
  assert.throws(
    () => createCalibrator("mse", { format: "fp8_e4m3fn", mode: "affine" }).result(),
    isErr("INVALID_ARGUMENT", /no data/),
  );
  const fpAffine = createCalibrator("mse", { format: "fp8_e4m3fn", mode: "affine" });
  fpAffine.observe(tensor(Float32Array.of(-1, 2), [2]));
  assert.throws(
    () => fpAffine.result(),
    isErr("UNSUPPORTED", /affine mode needs an integer format/),
  );
});

Deno.test("snapshotCalibrator() state merges across a structured clone like the calibrator", () => {
  const x = gaussian(20_000, 8);
  const t = tensor(x, [5_000, 4]);
  for (const name of ALL) {
    const a = createCalibrator(name, { axis: 1, stride: 16 });
    const b = createCalibrator(name, { axis: 1, stride: 16 });
    a.observe(t);
    b.observe(tensor(x.map((v) => v * 3), [5_000, 4]));
    const direct = createCalibrator(name, { axis: 1, stride: 16 });
    direct.merge(a);
    direct.merge(b);
    const viaWorker = createCalibrator(name, { axis: 1, stride: 16 });
    mergeSnapshot(viaWorker, structuredClone(snapshotCalibrator(a)));
    mergeSnapshot(viaWorker, structuredClone(snapshotCalibrator(b)));
    assert.deepEqual(viaWorker.result(), direct.result(), name);
    assert.throws(
      () => mergeSnapshot(createCalibrator(name), snapshotCalibrator(a)),
      isErr("INVALID_ARGUMENT", /merge needs the same algorithm and options/),
    );
  }
});

Deno.test("histogram calibrators honour the bins option", () => {
  const x = laplace(100_000, 9);
  const { amax, lo, hi } = range(x);
  const abs = exactHist(Float32Array.from(x, Math.abs), 0, amax, 256);
  const c = feed(createCalibrator("percentile", { bins: 256, percentile: 99.9 }), x, 9_999);
  const t = percentileThreshold(abs, amax, 99.9);
  assert.ok(Math.abs(c.result().max[0] - Math.min(t, hi)) <= amax / 256 + t * 2 ** -23);
  assert.ok(c.result().min[0] >= lo);
  assert.throws(
    () => createCalibrator("kl", { bins: 0 }),
    isErr("INVALID_ARGUMENT", /bins and oversample must be positive integers/),
  );
});

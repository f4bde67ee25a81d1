// The integer route of the dense conv (assembly/_conv_int.ts): integer inputs and prepared
// integer weights with `integerSums` give the bits of the scalar reference (refConv2dF32, whose
// f32 partial sums are exact integers under the promise), on one and two threads; chunks that are
// not integers (NaN, fractions) fall back to the f32 kernel; and beyond 2^24 (where the f32
// kernel rounds, so the probe also shows the route runs) the exact sums are scaled as in double.

import assert from "node:assert/strict";
import { createPool } from "@lowbit/runtime";
import {
  conv2dF32,
  type Conv2dF32Options,
  conv2dF32Parallel,
  createFloatKernelsOn,
  floatKernelSources,
  prepareConv2dF32,
  quantizeF32,
} from "./float.ts";
import { refConv2dF32, type RefConvGeometry } from "./reference_float.ts";
import { floatContexts, randF32, rng } from "./_test_util.ts";

type Shape4 = [number, number, number, number];
interface Case {
  input: Shape4;
  weight: Shape4;
  group: number;
  strides: [number, number];
  pads: Shape4;
  dilations: [number, number];
}

const c = (
  input: Shape4,
  weight: Shape4,
  group = 1,
  strides: [number, number] = [1, 1],
  pads: Shape4 = [0, 0, 0, 0],
  dilations: [number, number] = [1, 1],
): Case => ({ input, weight, group, strides, pads, dilations });

// Pointwise (odd K, pixel tails, rows not a multiple of 4), 3×3 padded and strided, grouped,
// dilated, a batch, and K = 64·9 over several im2col chunks; then convs with an even channel
// count per group, whose i16 image is made in channel pairs and K summed in (ky, kx, c) order.
const CASES: Case[] = [
  c([1, 16, 5, 13], [17, 16, 1, 1]),
  c([1, 7, 9, 11], [5, 7, 1, 1]),
  c([2, 3, 7, 9], [6, 3, 3, 3], 1, [1, 1], [1, 1, 1, 1]),
  c([1, 4, 10, 15], [6, 4, 3, 2], 1, [2, 3], [0, 1, 2, 1]),
  c([1, 8, 9, 9], [12, 2, 3, 3], 4, [1, 1], [1, 1, 1, 1]),
  c([1, 5, 12, 12], [3, 5, 3, 3], 1, [1, 1], [2, 2, 2, 2], [2, 2]),
  c([1, 64, 20, 20], [16, 64, 3, 3], 1, [1, 1], [1, 1, 1, 1]),
  // even channel counts take the channel-pair image: stride 2 rows, dilation, a 5×5 with odd
  // width tails, two groups
  c([1, 6, 17, 37], [10, 6, 3, 3], 1, [2, 2], [1, 1, 1, 1]),
  c([1, 4, 12, 20], [3, 4, 3, 3], 1, [1, 1], [2, 2, 2, 2], [2, 2]),
  c([1, 10, 11, 13], [7, 10, 5, 5], 1, [1, 1], [2, 2, 2, 2]),
  c([1, 12, 9, 19], [8, 6, 3, 3], 2, [1, 1], [1, 0, 1, 2]),
];

const count = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const ints = (n: number, lo: number, hi: number, r: () => number): Float32Array =>
  Float32Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1)));

function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i]))) continue;
    assert.fail(`${what}: output[${i}] = ${got[i]}, reference ${want[i]}`);
  }
}

function optsOf(t: Case, r: () => number, n: number): Conv2dF32Options {
  const o = t.weight[0];
  const posts = [
    undefined,
    { hardswish: true, quantize: { scale: 0.37, lo: -128, hi: 127 } },
    { preMul: 0.5, mul: 2, add: 1 },
    { quantize: { scale: 0.05, lo: 0, hi: 255 } },
    { preMul: 0.5, quantize: { scale: 0.2, lo: -100, hi: 155 }, dequantize: { nanCode: 100 } },
    // The integer plan's PP-LCNet epilogues (straight through in the kernels without a clamp).
    {
      preMul: 1.25,
      preAdd: -0.5,
      hardswish: true,
      mul: 0.75,
      add: 0.1,
      quantize: { scale: 0.3, lo: -128, hi: 127 },
    },
    { preMul: 0.9, preAdd: 0.2, quantize: { scale: 0.4, lo: -3, hi: 252 } },
    { quantize: { scale: 0.6, lo: 0, hi: 255 }, dequantize: { nanCode: 128 } },
  ];
  return {
    group: t.group,
    strides: t.strides,
    pads: t.pads,
    dilations: t.dilations,
    scale: randF32(o, r, 0.01),
    bias: n % 2 || n % posts.length >= 5 ? randF32(o, r) : undefined,
    activation: n % 3 === 0 || n % posts.length === 7 ? { min: -4, max: 6 } : "none",
    post: posts[n % posts.length],
  };
}

for (const k of floatContexts()) {
  Deno.test(`conv2dF32() integerSums: integer codes give the reference's bits (${k.isa})`, () => {
    const r = rng(5);
    CASES.forEach((t, n) => {
      // codes of an asymmetric uint8 activation (centred: −z .. 255 − z) and int8 weights
      const x = ints(count(t.input), -100, 155, r);
      const w = ints(count(t.weight), -128, 127, r);
      const opts = optsOf(t, r, n);
      const prepared = prepareConv2dF32(w, t.weight, k, { integer: true });
      assert.ok(prepared.integer);
      const got = conv2dF32(x, t.input, prepared, { ...opts, kernels: k, integerSums: true });
      const g: RefConvGeometry = t;
      const { min: lo, max: hi } = opts.activation === "none"
        ? { min: undefined, max: undefined }
        : opts.activation as { min: number; max: number };
      const want = refConv2dF32(x, w, g, k.madd, { ...opts, lo, hi });
      sameBits(got.data, want, `case ${n} (${k.isa})`);
      prepared.dispose();
    });
  });
}

Deno.test("conv2dF32() integerSums: NaN and fractional chunks fall back to the f32 kernel", () => {
  const k = floatContexts()[0];
  const r = rng(9);
  const t = c([1, 6, 9, 10], [7, 6, 3, 3], 1, [1, 1], [1, 1, 1, 1]);
  const w = ints(count(t.weight), -128, 127, r);
  const prepared = prepareConv2dF32(w, t.weight, k, { integer: true });
  const opts = optsOf(t, r, 1);
  for (const odd of [NaN, 0.5, 40000]) {
    const x = ints(count(t.input), -128, 127, r);
    x[37] = odd;
    const got = conv2dF32(x, t.input, prepared, { ...opts, kernels: k, integerSums: true });
    const want = conv2dF32(x, t.input, w, t.weight, { ...opts, kernels: k });
    sameBits(got.data, want.data, `input with ${odd}`);
  }
  // A pointwise conv converts chunk by chunk (no padded i16 copy): the chunk with the odd value
  // falls back, the others stay on the i16 route; K = 96 takes several chunks of 8 pixels' panels.
  const pw = c([1, 96, 30, 31], [24, 96, 1, 1]);
  const w1 = ints(count(pw.weight), -128, 127, r);
  const p1 = prepareConv2dF32(w1, pw.weight, k, { integer: true });
  const o1 = optsOf(pw, r, 1);
  for (const odd of [NaN, 0.5, 40000]) {
    const x = ints(count(pw.input), -100, 155, r);
    x[30 * 31 * 50 + 400] = odd;
    const got = conv2dF32(x, pw.input, p1, { ...o1, kernels: k, integerSums: true });
    const want = conv2dF32(x, pw.input, w1, pw.weight, { ...o1, kernels: k });
    sameBits(got.data, want.data, `pointwise input with ${odd}`);
  }
  p1.dispose();
  // weights that are not integers: no i16 copy, the f32 kernel
  const frac = prepareConv2dF32(w.map((v) => v + 0.5), t.weight, k, { integer: true });
  assert.equal(frac.integer, false);
  prepared.dispose();
  frac.dispose();
});

Deno.test("conv2dF32() integerSums: beyond 2^24 the i16 route gives fround(exact sum · scale) + bias", () => {
  // 1×1 conv, K = 64 terms of ±4000·±4000: the partial sums pass 2^24, where the f32 kernel
  // rounds them and the int32 sum stays exact. Expected, by a plain double loop: y =
  // f32(f32(acc·s) + b) with acc the exact sum (the integer plan's TypeScript epilogue). Pixel
  // counts 32 (whole panels of 8) and 21 (a partial panel, read from the image rows directly).
  const k = floatContexts()[0];
  const r = rng(3);
  for (const [h, w] of [[4, 8], [3, 7]]) {
    const p = h * w;
    const input: Shape4 = [1, 64, h, w], weight: Shape4 = [4, 64, 1, 1];
    const x = Float32Array.from({ length: count(input) }, () => (r() < 0.5 ? -4000 : 4000) - 1);
    const wt = Float32Array.from({ length: count(weight) }, () => (r() < 0.5 ? -4000 : 3999));
    const scale = Float32Array.from([0.3, 1e-7, 3, 0.0123]), bias = Float32Array.from([1, 2, 3, 4]);
    const want = new Float32Array(4 * p);
    for (let o = 0; o < 4; o++) {
      for (let q = 0; q < p; q++) {
        let acc = 0;
        for (let ci = 0; ci < 64; ci++) acc += x[ci * p + q] * wt[o * 64 + ci];
        want[o * p + q] = Math.fround(Math.fround(acc * scale[o]) + bias[o]);
      }
    }
    const viaF32 = conv2dF32(x, input, wt, weight, { kernels: k, scale, bias });
    assert.notDeepEqual(
      viaF32.data,
      want,
      "the probe must separate the f32 kernel from exact sums",
    );
    const prepared = prepareConv2dF32(wt, weight, k, { integer: true });
    const got = conv2dF32(x, input, prepared, { kernels: k, integerSums: true, scale, bias });
    sameBits(got.data, want, `i16 route, ${h}×${w}`);
    prepared.dispose();
  }
});

Deno.test("conv2dF32() integerSums: beyond 2^24, 3×3 convs take the i16 image (channel pairs or tap order)", () => {
  // 3×3 padded convs whose partial sums pass 2^24 (±4001·±4000 terms; |sum| < 108·1.6e7 < 2^31):
  // the f32 kernel rounds them, so equal bits show that the conv ran on exact int32 sums, from
  // the channel-pair image (even channels per group: stride 1 and 2, two groups) or the tap-order
  // one (odd). Expected by a plain double loop: y = f32(f32(acc·s[o]) + b[o]), acc exact.
  const k = floatContexts()[0];
  const r = rng(29);
  const cases = [
    c([1, 12, 9, 21], [5, 12, 3, 3], 1, [1, 1], [1, 1, 1, 1]),
    c([1, 12, 9, 37], [5, 12, 3, 3], 1, [2, 2], [1, 1, 1, 1]),
    c([1, 12, 7, 19], [6, 6, 3, 3], 2, [1, 1], [1, 1, 1, 1]),
    c([1, 11, 9, 21], [5, 11, 3, 3], 1, [1, 1], [1, 1, 1, 1]),
  ];
  for (const [n, t] of cases.entries()) {
    const [, cin, h, w] = t.input, [o, cg, kh, kw] = t.weight;
    const [sh, sw] = t.strides, [pt, pl, pb, pr] = t.pads;
    const oh = Math.floor((h + pt + pb - kh) / sh) + 1,
      ow = Math.floor((w + pl + pr - kw) / sw) + 1;
    const x = Float32Array.from({ length: count(t.input) }, () => (r() < 0.5 ? -4000 : 4000) - 1);
    const wt = Float32Array.from({ length: count(t.weight) }, () => (r() < 0.5 ? -4000 : 3999));
    const scale = randF32(o, r, 1e-3), bias = randF32(o, r);
    const og = o / t.group, want = new Float32Array(o * oh * ow);
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / og);
      for (let y = 0; y < oh; y++) {
        for (let xx = 0; xx < ow; xx++) {
          let acc = 0;
          for (let ci = 0; ci < cg; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              for (let kx = 0; kx < kw; kx++) {
                const iy = y * sh - pt + ky, ix = xx * sw - pl + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                acc += x[((g * cg + ci) * h + iy) * w + ix] *
                  wt[((oc * cg + ci) * kh + ky) * kw + kx];
              }
            }
          }
          want[(oc * oh + y) * ow + xx] = Math.fround(Math.fround(acc * scale[oc]) + bias[oc]);
        }
      }
    }
    assert.equal(cin, cg * t.group);
    const opts = { group: t.group, strides: t.strides, pads: t.pads, kernels: k, scale, bias };
    const viaF32 = conv2dF32(x, t.input, wt, t.weight, opts);
    assert.notDeepEqual(viaF32.data, want, `case ${n}: the probe must separate the f32 kernel`);
    const prepared = prepareConv2dF32(wt, t.weight, k, { integer: true });
    const got = conv2dF32(x, t.input, prepared, { ...opts, integerSums: true });
    sameBits(got.data, want, `case ${n}: i16 route`);
    // the same codes from a float input quantized on the way into the i16 image (x·0.25 plus
    // less than half a step: QuantizeLinear with scale 0.25 gives x back)
    const xf = x.map((v, i) => v * 0.25 + ((i % 5) - 2) * 0.05);
    const inputQuantize = { scale: 0.25, lo: -32768, hi: 32767 };
    const gotQ = conv2dF32(xf, t.input, prepared, { ...opts, integerSums: true, inputQuantize });
    sameBits(gotQ.data, want, `case ${n}: i16 route, inputQuantize`);
    prepared.dispose();
  }
});

/** QuantizeLinear to a centred code, by its scalar definition: clamp(round-half-even(f32(v / s))). */
function codeOf(v: number, s: number, lo: number, hi: number): number {
  const q = Math.fround(v / s); // the f32 quotient: the double one, rounded once to f32
  const f = Math.floor(q), d = q - f;
  const r = d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return Math.min(Math.max(r, lo), hi);
}

/** Float inputs: random values, exact ties (k + 1/2)·s, values that saturate either end. */
function floatInput(n: number, s: number, r: () => number): Float32Array {
  return Float32Array.from(
    { length: n },
    (_, i) =>
      i % 7 === 3
        ? (Math.floor(r() * 300) - 150 + 0.5) * s
        : i % 11 === 5
        ? (r() < 0.5 ? -1 : 1) * 1e4 * s
        : (r() * 300 - 150) * s,
  );
}

for (const k of floatContexts()) {
  Deno.test(`conv2dF32() integerSums + inputQuantize: the i16 image quantizes on the way in (${k.isa})`, () => {
    // The i16 copy of a float input is made from its codes directly (no quantize pass of its
    // own): the result must be the scalar reference's conv of codes computed here by
    // QuantizeLinear's definition, and the input must stay as it was.
    const r = rng(47);
    const q = { scale: Math.fround(0.037), lo: -100, hi: 155 };
    CASES.forEach((t, n) => {
      if (t.weight[2] * t.weight[3] === 1) return; // pointwise convs make no i16 image
      const x = floatInput(count(t.input), q.scale, r);
      const keep = x.slice();
      const w = ints(count(t.weight), -128, 127, r);
      const opts = optsOf(t, r, n);
      const prepared = prepareConv2dF32(w, t.weight, k, { integer: true });
      const got = conv2dF32(x, t.input, prepared, {
        ...opts,
        kernels: k,
        integerSums: true,
        inputQuantize: q,
      });
      const codes = x.map((v) => codeOf(v, q.scale, q.lo, q.hi));
      const { min: lo, max: hi } = opts.activation === "none"
        ? { min: undefined, max: undefined }
        : opts.activation as { min: number; max: number };
      const want = refConv2dF32(codes, w, t, k.madd, { ...opts, lo, hi });
      sameBits(got.data, want, `case ${n} (${k.isa})`);
      sameBits(x, keep, `case ${n}: input untouched`);
      prepared.dispose();
    });
  });
}

Deno.test("conv2dF32() integerSums + inputQuantize: NaN or codes beyond i16 fall back to the f32 route", () => {
  // A NaN input quantizes to a NaN code, a code range beyond i16 gives codes the i16 image cannot
  // hold: that image then runs on the f32 route from the quantized f32 input, the values of the
  // plain conv of quantizeF32's codes (with a batch of two, only the image with the odd value).
  const k = floatContexts()[0];
  const r = rng(53);
  for (const t of [CASES[6], CASES[7], CASES[3]]) {
    const w = ints(count(t.weight), -128, 127, r);
    const prepared = prepareConv2dF32(w, t.weight, k, { integer: true });
    const opts = optsOf(t, r, 1);
    const input: Shape4 = [2, ...t.input.slice(1)] as Shape4;
    for (
      const [odd, q] of [[NaN, { scale: 0.02, lo: -128, hi: 127 }], [
        -1e3,
        { scale: 0.02, lo: -40000, hi: 127 },
      ]] as const
    ) {
      const x = floatInput(count(input), q.scale, r);
      x[count(input) / 2 + 17] = odd;
      const got = conv2dF32(x, input, prepared, {
        ...opts,
        kernels: k,
        integerSums: true,
        inputQuantize: q,
      });
      const codes = quantizeF32(x, q.scale, q.lo, q.hi, { kernels: k });
      const want = conv2dF32(codes, input, w, t.weight, { ...opts, kernels: k });
      sameBits(got.data, want.data, `input with ${odd}, codes ${q.lo}..${q.hi}`);
    }
    prepared.dispose();
  }
});

Deno.test("conv2dF32Parallel() integerSums on 2 threads equals one thread, bit for bit", async () => {
  const pool = await createPool({ modules: floatKernelSources("wasmsimd"), threads: 2 });
  try {
    const k = createFloatKernelsOn(pool);
    const r = rng(17);
    const cases = [
      c([1, 16, 37, 41], [24, 16, 1, 1]),
      c([1, 8, 30, 33], [20, 8, 3, 3], 1, [2, 2], [1, 1, 1, 1]),
      c([3, 16, 20, 21], [32, 16, 1, 1]),
    ];
    for (const [n, t] of cases.entries()) {
      const x = ints(count(t.input), -128, 127, r);
      const w = ints(count(t.weight), -127, 127, r);
      const opts = optsOf(t, r, n + 1);
      const prepared = prepareConv2dF32(w, t.weight, k, { integer: true });
      const par = await conv2dF32Parallel(x, t.input, prepared, { ...opts, integerSums: true });
      const one = conv2dF32(x, t.input, prepared, { ...opts, integerSums: true });
      sameBits(par.data, one.data, `case ${n}: 2 threads vs 1`);
      // a float input quantized on the way into the i16 image, on the calling thread
      const xf = floatInput(x.length, 0.05, r);
      const inputQuantize = { scale: 0.05, lo: -128, hi: 127 };
      const parQ = await conv2dF32Parallel(xf, t.input, prepared, {
        ...opts,
        integerSums: true,
        inputQuantize,
      });
      const oneQ = conv2dF32(xf, t.input, prepared, { ...opts, integerSums: true, inputQuantize });
      sameBits(parQ.data, oneQ.data, `case ${n}: inputQuantize, 2 threads vs 1`);
      const lo = opts.activation === "none" ? undefined : -4, hi = lo === undefined ? lo : 6;
      sameBits(par.data, refConv2dF32(x, w, t, k.madd, { ...opts, lo, hi }), `case ${n}: ref`);
      prepared.dispose();
    }
  } finally {
    await pool.close();
  }
});

/** The integer plan's requantization of an exact sum (libs/graph/exec/ops/fused.ts, epilogue). */
function requantRef(acc: number, r: Float64Array, c: number): number {
  const [bq, m0, inv, zy, lo, hi] = r.subarray(6 * c, 6 * c + 6);
  const v = (acc + bq) * m0;
  const q = (v >= 0 ? Math.floor(v * inv + 0.5) : -Math.floor(-v * inv + 0.5)) + zy;
  return q < lo ? lo : q > hi ? hi : q;
}

for (const k of floatContexts()) {
  Deno.test(`conv2dF32() requantize: integer-only codes equal the scalar formula (${k.isa})`, () => {
    const r = rng(23);
    CASES.forEach((t, n) => {
      if (t.group > 1 && t.weight[1] === 1) return; // dense only
      const o = t.weight[0];
      const x = ints(count(t.input), -100, 155, r);
      const w = ints(count(t.weight), -128, 127, r);
      // per channel: bias code, multiplier < 2^31, 2^-shift, zero point, range (int8 / uint8)
      const rq = new Float64Array(6 * o);
      for (let c = 0; c < o; c++) {
        const signed = (n + c) % 2 === 0;
        rq.set([
          Math.round((r() - 0.5) * 4000),
          Math.floor(2 ** 30 + r() * 2 ** 30),
          2 ** -(36 + (c % 5)),
          signed ? -3 : 7,
          signed ? -128 : 0,
          signed ? 127 : 255,
        ], 6 * c);
      }
      const g: RefConvGeometry = t;
      const exact = refConv2dF32(x, w, g, "exact");
      const opts = { group: t.group, strides: t.strides, pads: t.pads, dilations: t.dilations };
      const per = exact.length / t.input[0] / o;
      for (const integer of [false, true]) {
        const prepared = prepareConv2dF32(w, t.weight, k, { integer });
        const got = conv2dF32(x, t.input, prepared, {
          ...opts,
          requantize: rq,
          integerSums: integer,
          kernels: k,
        });
        for (let i = 0; i < exact.length; i++) {
          const want = requantRef(exact[i], rq, Math.floor(i / per) % o);
          if (got.data[i] !== want) {
            assert.fail(`case ${n} integer ${integer}: [${i}] = ${got.data[i]}, want ${want}`);
          }
        }
        prepared.dispose();
      }
    });
  });
}

Deno.test("conv2dF32() requantize rejects a wrong record length or a scale given with it", () => {
  const k = floatContexts()[0];
  const x = new Float32Array(4), w = new Float32Array(2);
  const bad = [
    { requantize: new Float64Array(6) },
    { requantize: new Float64Array(12), scale: new Float32Array(2) },
  ];
  for (const o of bad) {
    assert.throws(() => conv2dF32(x, [1, 1, 2, 2], w, [2, 1, 1, 1], { ...o, kernels: k }), {
      name: "LowbitError",
    });
  }
});

Deno.test("conv post-op quantize gives the f32 division's codes", () => {
  // 1×1 conv with weight 1: the output is the input through the quantize post-op, f32(v / s)
  // (`f32x4.div`; an earlier f32(f64(v)·f64(1 / s)) form was slower inside the fused epilogue).
  // Reference: refPost (a scalar f32 division). Inputs: ties (k + 1/2)·s and their f32 neighbours, tiny and huge values, random
  // magnitudes; scales with long mantissas.
  const r = rng(41);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (const s of [0.1, 0.37, 1 / 3, 0.013, 7.77, 1e-3, 3e-7].map(Math.fround)) {
    const xs: number[] = [0, -0, 1e-45, -1e-40, 3e38, -3e38, Infinity, NaN];
    for (let k = -300; k <= 300; k++) {
      f[0] = (k + 0.5) * s;
      const b = u[0];
      for (const d of [-2, -1, 0, 1, 2]) {
        u[0] = b + d;
        xs.push(f[0]);
      }
    }
    for (let i = 0; i < 4000; i++) xs.push((r() * 2 - 1) * 2 ** (r() * 40 - 20) * s);
    const x = Float32Array.from(xs);
    const post = { quantize: { scale: s, lo: -100000, hi: 100000 } };
    for (const k of floatContexts()) {
      const y = conv2dF32(x, [1, 1, 1, x.length], new Float32Array([1]), [1, 1, 1, 1], {
        scale: new Float32Array([1]),
        post,
        kernels: k,
      });
      const want = refConv2dF32(
        x,
        new Float32Array([1]),
        c([1, 1, 1, x.length], [1, 1, 1, 1]),
        k.madd,
        {
          scale: new Float32Array([1]),
          post,
        },
      );
      sameBits(y.data, want, `scale ${s} (${k.isa})`);
    }
  }
});

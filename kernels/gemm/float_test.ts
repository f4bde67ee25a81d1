import assert from "node:assert/strict";
import { getFormat, LowbitError } from "@lowbit/core";
import {
  createFloatKernels,
  decodeMinifloatWeights,
  type FloatIsa,
  gemmF32,
  gemmMinifloat,
  type MinifloatWeightFormat,
  type MinifloatWeights,
  packF32B,
  packMinifloatB,
} from "./float.ts";
import {
  decodeE8M0,
  decodeMinifloat,
  fmaF32,
  maddF32,
  type MinifloatElement,
  refGemmF32,
  refGemmMinifloat,
} from "./reference_float.ts";
import { floatContexts, randF32, rng } from "./_test_util.ts";

// *** helpers ***

const CTX = floatContexts();

/** Bitwise equality (any NaN equals any NaN); the message names position and shapes. */
function assertSameBits(got: Float32Array, want: Float32Array, what: string, n: number): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w))) continue;
    assert.fail(
      `${what}: C[${Math.floor(i / n)}][${i % n}] = ${g}, reference ${w} (diff ${g - w})`,
    );
  }
}

const AXIS = [1, 3, 15, 16, 17, 63, 64, 65, 255, 511];

/** Shapes covering every AXIS value on every axis, sized to keep the reference quick. */
function sweepShapes(budget: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  const small = [3, 17, 64, 1, 65, 15, 16, 63];
  AXIS.forEach((v, i) => {
    const a = small[i % small.length], b = small[(i + 3) % small.length];
    for (const s of [[v, a, b], [a, v, b], [a, b, v]] as [number, number, number][]) {
      let [m, n, k] = s;
      while (m * n * k > budget && (m > 17 || n > 17 || k > 17)) {
        if (m !== v && m > 17) m = 17;
        else if (n !== v && n > 17) n = 17;
        else if (k !== v && k > 17) k = 17;
        else break;
      }
      out.push([m, n, k]);
    }
  });
  out.push([64, 64, 511], [65, 17, 300], [255, 31, 40]);
  return out;
}

// *** reference self-checks ***

Deno.test("fmaF32() is a single rounding where an f64 sum would double-round", () => {
  // p = 1 + 2^-11 + 2^-24 (a tie in f32), c = 2^-60: f64 p + c = p (tie, even → down), true
  // value above the tie → up.
  const a = 1 + 2 ** -12;
  assert.equal(Math.fround(a * a + 2 ** -60), 1 + 2 ** -11);
  assert.equal(fmaF32(a, a, 2 ** -60), 1 + 2 ** -11 + 2 ** -23);
  assert.equal(fmaF32(a, a, -(2 ** -60)), 1 + 2 ** -11);
  assert.equal(maddF32(3, 4, 5, "unfused"), 17);
  // the tie between FLT_MAX and 2^128 (where f32 rounding overflows), approached from below
  const fltMax = (2 - 2 ** -23) * 2 ** 127;
  const mid = 2 ** 128 - 2 ** 103; // = x·y below, exactly
  const x = 18631 * 2 ** 60, y = 1801 * 2 ** 43; // 18631 · 1801 = 2^25 − 1
  assert.equal(x * y, mid);
  assert.equal(Math.fround(mid), Infinity);
  assert.equal(fmaF32(x, y, -(2 ** -60)), fltMax);
  assert.equal(fmaF32(x, y, 2 ** -60), Infinity);
  assert.ok(Number.isNaN(fmaF32(Infinity, 0, 1)));
});

// *** f32 GEMM ***

for (const k of CTX) {
  Deno.test(`gemmF32() equals the reference bit for bit over the shape sweep (${k.isa}, ${k.madd})`, () => {
    const r = rng(1);
    let t = 0;
    for (const [m, n, kk] of sweepShapes(k.madd === "fused" ? 300_000 : 600_000)) {
      const a = randF32(m * kk, r), b = randF32(kk * n, r);
      const variant = t++ % 4;
      const bias = variant & 1 ? randF32(n, r) : undefined;
      const scale = variant === 2 ? randF32(n, r, 2) : undefined;
      const act = variant === 3
        ? { min: -0.25, max: 0.5 }
        : variant === 1
        ? "relu" as const
        : undefined;
      const p = packF32B(b, kk, n, { kernels: k });
      const c = gemmF32(a, m, p, { bias, scale, activation: act });
      const want = refGemmF32(a, b, m, kk, n, k.madd, {
        bias,
        scale,
        lo: act === "relu" ? 0 : act?.min,
        hi: act === undefined || act === "relu" ? undefined : act.max,
      });
      assertSameBits(c, want, `gemmF32 M=${m} N=${n} K=${kk} (${k.isa})`, n);
      p.dispose();
    }
  });

  Deno.test(`gemmF32() rounds the accumulate step as reported by madd (${k.isa}, ${k.madd})`, () => {
    // step 2 adds (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 (an f32 tie) to 2^-60: fused rounds up, an
    // f64-then-f32 emulation would round to even, unfused rounds the product first.
    const t = 1 + 2 ** -12;
    for (const [m, n] of [[1, 1], [5, 9]]) {
      const a = new Float32Array(m * 2), b = new Float32Array(2 * n);
      for (let i = 0; i < m; i++) a.set([2 ** -30, t], i * 2);
      for (let j = 0; j < n; j++) [b[j], b[n + j]] = [2 ** -30, t];
      const p = packF32B(b, 2, n, { kernels: k });
      const want = k.madd === "fused" ? 1 + 2 ** -11 + 2 ** -23 : 1 + 2 ** -11;
      for (const v of gemmF32(a, m, p)) assert.equal(v, want);
      p.dispose();
    }
  });

  Deno.test(`gemmF32() handles extreme values and the nk layout (${k.isa})`, () => {
    const r = rng(2);
    const m = 5, n = 19, kk = 37;
    const a = randF32(m * kk, r, 1e30);
    const b = randF32(kk * n, r, 1e10);
    a[3] = Infinity;
    a[40] = NaN;
    a[41] = -0;
    b[7] = 1e-40; // subnormal
    b[8] = -Infinity;
    const bt = new Float32Array(kk * n);
    for (let i = 0; i < kk; i++) for (let j = 0; j < n; j++) bt[j * kk + i] = b[i * n + j];
    const p = packF32B(bt, kk, n, { layout: "nk", kernels: k });
    assertSameBits(
      gemmF32(a, m, p),
      refGemmF32(a, b, m, kk, n, k.madd),
      "gemmF32 extremes",
      n,
    );
    // m = 1 (GEMV path) and m > 1 (GEMM path) agree row by row
    const row = gemmF32(a.subarray(kk, 2 * kk), 1, p);
    assertSameBits(row, gemmF32(a, m, p).subarray(n, 2 * n), "gemv vs gemm row 1", n);
  });
}

Deno.test("gemmF32() GEMV M=1 at K=4096, N=300 equals the reference", () => {
  const r = rng(3);
  for (const k of CTX) {
    const kk = 4096, n = 300;
    const a = randF32(kk, r), b = randF32(kk * n, r);
    const p = packF32B(b, kk, n, { kernels: k });
    assertSameBits(gemmF32(a, 1, p), refGemmF32(a, b, 1, kk, n, k.madd), `gemv (${k.isa})`, n);
    p.dispose();
  }
});

// *** errors ***

Deno.test("gemmF32() and packF32B() reject bad shapes before touching memory", () => {
  const k = CTX[0];
  const err = (f: () => unknown, code: string, re: RegExp) =>
    assert.throws(
      f,
      (e: unknown) => e instanceof LowbitError && e.code === code && re.test(e.message),
    );
  err(
    () => packF32B(new Float32Array(5), 2, 3, { kernels: k }),
    "SHAPE_MISMATCH",
    /has 5 elements, expected 6/,
  );
  err(
    () => packF32B(new Float32Array(6), 0, 3, { kernels: k }),
    "INVALID_ARGUMENT",
    /k must be an integer/,
  );
  const p = packF32B(new Float32Array(6), 2, 3, { kernels: k });
  err(() => gemmF32(new Float32Array(5), 2, p), "SHAPE_MISMATCH", /a \(2×2\) has 5 elements/);
  err(
    () => gemmF32(new Float32Array(4), 2, p, { bias: new Float32Array(2) }),
    "SHAPE_MISMATCH",
    /bias/,
  );
  err(
    () => gemmF32(new Float32Array(4), 2, p, { activation: { min: 1, max: 0 } }),
    "INVALID_ARGUMENT",
    /clamp/,
  );
  err(
    () => gemmF32(new Float32Array(4), 2, p, { out: new Float32Array(5) }),
    "SHAPE_MISMATCH",
    /out/,
  );
  p.dispose();
  err(() => gemmF32(new Float32Array(4), 2, p), "INVALID_ARGUMENT", /disposed/);
  err(
    () => createFloatKernels({ isa: "avx512" as unknown as FloatIsa }),
    "INVALID_ARGUMENT",
    /unknown float kernel ISA/,
  );
});

Deno.test("packF32B() fails with OUT_OF_MEMORY, not a trap, beyond the memory limit", () => {
  const k = createFloatKernels({ isa: "wasmsimd", maxPages: 8 });
  assert.throws(
    () => packF32B(new Float32Array(1024 * 256), 1024, 256, { kernels: k }),
    (e: unknown) => e instanceof LowbitError && e.code === "OUT_OF_MEMORY",
  );
  // still usable afterwards
  const p = packF32B(new Float32Array([1, 2]), 1, 2, { kernels: k });
  assert.deepEqual([...gemmF32(new Float32Array([3]), 1, p)], [3, 6]);
});

// *** minifloat ***

const ELEMENTS: MinifloatElement[] = [
  "fp8_e4m3fn",
  "fp8_e5m2",
  "fp6_e3m2fn",
  "fp6_e2m3fn",
  "fp4_e2m1fn",
];
const BLOCKS: MinifloatWeightFormat[] = [
  "mxfp8_e4m3",
  "mxfp8_e5m2",
  "mxfp6_e3m2",
  "mxfp6_e2m3",
  "mxfp4",
  "nvfp4",
];
const BITS: Record<MinifloatElement, number> = {
  fp8_e4m3fn: 8,
  fp8_e5m2: 8,
  fp6_e3m2fn: 6,
  fp6_e2m3fn: 6,
  fp4_e2m1fn: 4,
};
const ELEMENT_OF: Record<string, MinifloatElement> = {
  mxfp8_e4m3: "fp8_e4m3fn",
  mxfp8_e5m2: "fp8_e5m2",
  mxfp6_e3m2: "fp6_e3m2fn",
  mxfp6_e2m3: "fp6_e2m3fn",
  mxfp4: "fp4_e2m1fn",
  nvfp4: "fp4_e2m1fn",
};

function validCodes(el: MinifloatElement, len: number, r: () => number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    let c: number;
    do c = Math.floor(r() * (1 << BITS[el])); while (
      Number.isNaN(decodeMinifloat(el, c)) || !Number.isFinite(decodeMinifloat(el, c))
    );
    out[i] = c;
  }
  return out;
}

function makeWeights(
  format: MinifloatWeightFormat,
  k: number,
  n: number,
  r: () => number,
  layout: "kn" | "nk",
): MinifloatWeights {
  const el = ELEMENT_OF[format] ?? format as MinifloatElement;
  const codes = validCodes(el, k * n, r);
  const w: MinifloatWeights = { format, k, n, codes, layout };
  if (format in ELEMENT_OF) {
    const block = format === "nvfp4" ? 16 : 32;
    const nb = Math.ceil(k / block);
    w.scales = new Uint8Array(nb * n);
    for (let i = 0; i < w.scales.length; i++) {
      if (format === "nvfp4") w.scales[i] = Math.floor(r() * 0x7f); // finite E4M3, positive
      else {
        // mostly moderate, some extremes (under/overflowing products)
        const x = r();
        w.scales[i] = x < 0.05 ? 0 : x > 0.95 ? 254 : 110 + Math.floor(r() * 30);
      }
    }
    if (format === "nvfp4") w.tensorScale = Math.fround(0.37 + r());
  } else if (r() < 0.5) w.channelScale = randF32(n, r, 3);
  return w;
}

function colScaleOf(w: MinifloatWeights): Float32Array | undefined {
  if (w.channelScale) return w.channelScale;
  if (w.format === "nvfp4" && w.tensorScale !== undefined && w.tensorScale !== 1) {
    return new Float32Array(w.n).fill(w.tensorScale);
  }
  return undefined;
}

function toKN(w: MinifloatWeights): Float32Array {
  return decodeMinifloatWeights(w, "kernel");
}

for (const k of CTX) {
  for (const format of [...ELEMENTS, ...BLOCKS]) {
    Deno.test(`gemmMinifloat() ${format} equals the reference bit for bit, GEMM and GEMV (${k.isa})`, () => {
      const r = rng(format.length * 7 + (k.isa === "wasmsimd" ? 0 : 1));
      const shapes: [number, number, number][] = [
        [1, 3, 1],
        [1, 17, 63],
        [1, 65, 65],
        [1, 16, 255],
        [1, 64, 511],
        [1, 15, 16],
        [3, 1, 17],
        [15, 63, 3],
        [16, 255, 15],
        [17, 16, 64],
        [64, 15, 65],
        [65, 64, 17],
        [255, 3, 16],
        [63, 65, 300],
        [511, 17, 1],
        [3, 511, 17],
        [1, 511, 33],
      ];
      let t = 0;
      for (const [m, n, kk] of shapes) {
        const layout = t++ % 2 ? "nk" : "kn";
        const w = makeWeights(format, kk, n, r, layout);
        const a = randF32(m * kk, r, 4);
        const bias = t % 3 ? randF32(n, r) : undefined;
        const act = t % 4 === 0 ? "relu" as const : undefined;
        const p = packMinifloatB(w, k);
        const got = gemmMinifloat(a, m, p, { bias, activation: act });
        const want = refGemmMinifloat(a, toKN(w), m, kk, n, ELEMENT_OF[format] ?? format, k.madd, {
          scale: colScaleOf(w),
          bias,
          lo: act ? 0 : undefined,
        });
        assertSameBits(got, want, `${format} M=${m} N=${n} K=${kk} ${layout} (${k.isa})`, n);
        p.dispose();
      }
    });
  }
}

Deno.test("decodeMinifloat() agrees bit for bit with @lowbit/core's formats", () => {
  for (const el of ELEMENTS) {
    const codes = Uint8Array.from({ length: 1 << BITS[el] }, (_, i) => i);
    const theirs = getFormat(el).decode(codes);
    for (let c = 0; c < codes.length; c++) {
      const mine = Math.fround(decodeMinifloat(el, c));
      assert.ok(
        Object.is(mine, theirs[c]) || (Number.isNaN(mine) && Number.isNaN(theirs[c])),
        `${el} code 0x${c.toString(16)}: ${mine} vs ${theirs[c]}`,
      );
    }
  }
  const e8m0 = getFormat("e8m0").decode(Uint8Array.from({ length: 256 }, (_, i) => i));
  for (let c = 0; c < 256; c++) {
    assert.ok(
      Object.is(Math.fround(decodeE8M0(c)), e8m0[c]) || (c === 255 && Number.isNaN(e8m0[c])),
      `e8m0 ${c}`,
    );
  }
});

Deno.test("decodeMinifloatWeights() · tensor scale agrees with @lowbit/core's block decode", () => {
  const r = rng(9);
  for (const format of BLOCKS) {
    const block = format === "nvfp4" ? 16 : 32;
    const n = 3, k = 2 * block;
    const w = makeWeights(format, k, n, r, "nk"); // nk: each column's K values are consecutive
    const f = getFormat(format) as unknown as {
      decodeBlocks(e: { codes: Uint8Array; scales: Uint8Array; tensorScale: number }): Float32Array;
    };
    const ts = w.tensorScale ?? 1;
    const theirs = f.decodeBlocks({ codes: w.codes, scales: w.scales!, tensorScale: ts });
    const mine = decodeMinifloatWeights(w); // K×N, without the tensor scale
    for (let j = 0; j < n; j++) {
      for (let kk = 0; kk < k; kk++) {
        const v = Math.fround(mine[kk * n + j] * ts);
        const t = theirs[j * k + kk];
        assert.ok(Object.is(v, t), `${format} (k=${kk}, n=${j}): ${v} vs ${t}`);
      }
    }
  }
});

Deno.test("packMinifloatB() rejects NaN / Inf codes and scales, naming the position", () => {
  const k = CTX[0];
  const bad = (w: MinifloatWeights, re: RegExp) =>
    assert.throws(
      () => packMinifloatB(w, k),
      (e: unknown) => e instanceof LowbitError && re.test(e.message),
    );
  bad(
    { format: "fp8_e4m3fn", k: 2, n: 2, codes: new Uint8Array([0, 0, 0xff, 0]) },
    /0xff at \(k=1, n=0\) is NaN/,
  );
  bad({ format: "fp8_e4m3fn", k: 1, n: 2, codes: new Uint8Array([0, 0x7f]) }, /is NaN/);
  bad(
    { format: "fp8_e5m2", k: 1, n: 2, codes: new Uint8Array([0x7c, 0]) },
    /0x7c at \(k=0, n=0\) is infinite/,
  );
  bad({ format: "fp8_e5m2", k: 1, n: 1, codes: new Uint8Array([0xfe]) }, /is NaN/);
  bad({ format: "fp4_e2m1fn", k: 1, n: 1, codes: new Uint8Array([16]) }, /not a 4-bit code/);
  bad({ format: "fp6_e2m3fn", k: 1, n: 1, codes: new Uint8Array([64]) }, /not a 6-bit code/);
  bad(
    { format: "mxfp4", k: 32, n: 1, codes: new Uint8Array(32), scales: new Uint8Array([0xff]) },
    /block scale 0xff at \(block=0, n=0\) is NaN/,
  );
  bad(
    { format: "nvfp4", k: 16, n: 1, codes: new Uint8Array(16), scales: new Uint8Array([0x7f]) },
    /block scale 0x7f/,
  );
  bad(
    { format: "mxfp4", k: 33, n: 1, codes: new Uint8Array(33), scales: new Uint8Array(1) },
    /scales \(2 blocks × 1\) has 1/,
  );
  bad(
    { format: "int3" as MinifloatWeightFormat, k: 1, n: 1, codes: new Uint8Array(1) },
    /unsupported weight format/,
  );
  bad({ format: "fp8_e4m3fn", k: 1, n: 1, codes: new Uint8Array(1), tensorScale: 2 }, /only nvfp4/);
  bad(
    { format: "fp6_e2m3fn", k: 3, n: 2, codes: new Uint8Array(5) },
    /codes \(3×2\) has 5 elements, expected 6/,
  );
  const w6 = packMinifloatB({ format: "fp6_e3m2fn", k: 3, n: 2, codes: new Uint8Array(6) }, k);
  assert.throws(
    () => gemmMinifloat(new Float32Array(5), 2, w6),
    (e: unknown) =>
      e instanceof LowbitError && e.code === "SHAPE_MISMATCH" && /a \(2×3\) has 5/.test(e.message),
  );
  assert.throws(
    () => gemmMinifloat(new Float32Array(6), 2, w6, { bias: new Float32Array(3) }),
    (e: unknown) => e instanceof LowbitError && /bias has 3 elements, expected 2/.test(e.message),
  );
  w6.dispose();
  // special codes of "finite" formats are numbers: every fp4 / fp6 code packs
  packMinifloatB({
    format: "fp4_e2m1fn",
    k: 16,
    n: 1,
    codes: Uint8Array.from({ length: 16 }, (_, i) => i),
  }, k)
    .dispose();
});

Deno.test("gemmMinifloat() fp8 / fp6 scaled domain equals the unscaled sum away from underflow", () => {
  // The kernels compute 2^-60 below the true values (see refGemmMinifloat); with products well
  // above 2^-66 the result is the plain f32 GEMM of the true weights, bit for bit.
  const r = rng(77);
  for (const k of CTX) {
    for (const format of ["fp8_e4m3fn", "fp8_e5m2", "fp6_e3m2fn", "fp6_e2m3fn"] as const) {
      const m = 3, n = 19, kk = 70;
      const w = makeWeights(format, kk, n, r, "kn");
      const a = Float32Array.from({ length: m * kk }, () => (r() < 0.5 ? -1 : 1) * (0.5 + r()));
      const p = packMinifloatB(w, k);
      for (const rows of [1, m]) {
        const got = gemmMinifloat(a.subarray(0, rows * kk), rows, p);
        const plain = refGemmF32(
          a.subarray(0, rows * kk),
          decodeMinifloatWeights(w),
          rows,
          kk,
          n,
          k.madd,
          {
            scale: w.channelScale,
          },
        );
        assertSameBits(got, plain, `${format} M=${rows} vs unscaled (${k.isa})`, n);
      }
      p.dispose();
    }
    // below 2^-66 a product is subnormal in the scaled domain: the kernel rounds it to a
    // multiple of 2^-89, as refGemmMinifloat says, not to 24 bits
    const w = { format: "fp8_e4m3fn" as const, k: 1, n: 1, codes: new Uint8Array([0x38]) }; // 1.0
    const a = new Float32Array([(1 + 2 ** -20) * 2 ** -70]);
    const p = packMinifloatB(w, k);
    const got = gemmMinifloat(a, 1, p);
    assert.equal(got[0], 2 ** -70);
    assertSameBits(
      got,
      refGemmMinifloat(a, decodeMinifloatWeights(w, "kernel"), 1, 1, 1, "fp8_e4m3fn", k.madd),
      "underflow case",
      1,
    );
    p.dispose();
  }
});

Deno.test("gemmMinifloat() decodes every fp6 code exactly, subnormal codes included (GEMM and GEMV)", () => {
  // W = the 64 codes as a 64×1 column; identity activations (GEMM, M = 64) and one-hot rows
  // (GEMV, M = 1) read each weight back: it must be decodeMinifloat's value, exactly.
  for (const k of CTX) {
    for (const format of ["fp6_e3m2fn", "fp6_e2m3fn"] as const) {
      const codes = Uint8Array.from({ length: 64 }, (_, i) => i);
      // + 0: a sum that starts at +0 turns the −0 code into +0.
      const want = Float32Array.from(codes, (c) => decodeMinifloat(format, c) + 0);
      const p = packMinifloatB({ format, k: 64, n: 1, codes }, k);
      const eye = new Float32Array(64 * 64);
      for (let i = 0; i < 64; i++) eye[i * 65] = 1;
      assert.deepEqual(gemmMinifloat(eye, 64, p), want, `${format} GEMM (${k.isa})`);
      for (let i = 0; i < 64; i++) {
        const y = gemmMinifloat(eye.subarray(i * 64, i * 64 + 64), 1, p);
        assert.ok(Object.is(y[0], want[i]), `${format} GEMV code ${i}: ${y[0]} vs ${want[i]}`);
      }
      p.dispose();
    }
  }
});

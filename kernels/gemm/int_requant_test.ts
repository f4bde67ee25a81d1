import assert from "node:assert/strict";
import { dyadicFromScale, LowbitError, requantizeDyadic } from "@lowbit/core";
import {
  gemmIntRef,
  gemmS4Requant,
  gemmS4Scaled,
  gemmS8,
  gemmS8Requant,
  gemmS8Scaled,
  packS4,
  packS8,
  requantize,
  requantizeRef,
  scaleRef,
} from "./mod.ts";
import { assertSame, intFamilies, intKernels, randInts, rng, shapeSweep } from "./_test_util.ts";

const DIMS = [1, 3, 15, 16, 17, 63, 64, 65, 255, 511];

/** Each of DIMS on each axis with rotating partners; products capped to keep the run short. */
function shapes(): [number, number, number][] {
  return shapeSweep(DIMS, [[3, 7]], 1.2e6);
}

/**
 * Per-channel multipliers in [2^30, 2^31) and shifts around the one that maps the typical
 * accumulator magnitude (≈ 40·√K·scale) onto ±64, so outputs cover the range and some saturate.
 */
function dyadics(N: number, K: number, r: () => number): { mult: Int32Array; shift: Int32Array } {
  const base = 31 + Math.round(Math.log2((40 * Math.sqrt(K)) / 64));
  const mult = randInts(Int32Array, N, 2 ** 30, 2 ** 31 - 1, r);
  const shift = randInts(Int32Array, N, Math.max(0, base - 2), base + 2, r);
  return { mult, shift };
}

for (const simd of intFamilies) {
  Deno.test(`gemmS8Requant() equals gemmIntRef + requantizeRef over the shape sweep (${simd})`, async () => {
    const k = await intKernels(simd);
    const r = rng(301);
    let t = 0;
    for (const [M, N, K] of shapes()) {
      const u8 = t % 2 === 1;
      const a = u8
        ? randInts(Uint8Array, M * K, 0, 255, r)
        : randInts(Int8Array, M * K, -128, 127, r);
      const w = randInts(Int8Array, K * N, -128, 127, r);
      const layout = t % 3 === 0 ? "nk" : "kn";
      const za = u8 ? 128 + (t % 5) : (t % 4 === 0 ? -3 : 0);
      const zb = t % 3 === 1 ? 5 : 0;
      const perChannel = t % 2 === 0;
      const { mult, shift } = dyadics(N, K, r);
      const m = perChannel ? mult : mult[0], s = perChannel ? shift : shift[0];
      const bias = t % 4 < 2 ? randInts(Int32Array, N, -5000, 5000, r) : undefined;
      const output = t % 5 === 2 ? "uint8" : "int8";
      const zp = output === "uint8" ? 128 : (t % 3) - 1;
      const activation = t % 6 === 3 ? "relu" : "none";
      const [qmin, qmax] = output === "uint8" ? [0, 255] : t % 7 === 4 ? [-100, 90] : [-128, 127];
      const b = packS8(k, w, K, N, { layout });
      try {
        const got = await gemmS8Requant(k, a, M, b, {
          multiplier: m,
          shift: s,
          bias,
          zeroPoint: zp,
          activation,
          qmin,
          qmax,
          output,
        }, { aType: u8 ? "u8" : "s8", aZeroPoint: za, bZeroPoint: zb });
        const acc = gemmIntRef(a, M, K, w, N, layout, za, zb);
        const lo = activation === "relu" ? Math.max(qmin, zp) : qmin;
        const want = requantizeRef(acc, M, N, m, s, bias, zp, lo, qmax, output);
        assert.equal(got.constructor, output === "int8" ? Int8Array : Uint8Array);
        assertSame(
          got,
          want,
          N,
          `${simd} ${u8 ? "u8" : "s8"} M=${M} N=${N} K=${K} za=${za} zb=${zb} ${output}` +
            ` ${perChannel ? "per-channel" : "per-tensor"} ${activation}`,
        );
      } finally {
        b.free();
      }
      t++;
    }
  });
}

Deno.test("gemmS8Requant() equals @lowbit/core requantizeDyadic (the spec) per tensor and per channel", async () => {
  for (const simd of intFamilies) {
    const k = await intKernels(simd);
    const r = rng(302);
    for (const [M, N, K] of [[17, 63, 65], [1, 65, 255], [64, 3, 511]]) {
      const a = randInts(Int8Array, M * K, -128, 127, r);
      const w = randInts(Int8Array, K * N, -128, 127, r);
      const b = packS8(k, w, K, N);
      try {
        const acc = await gemmS8(k, a, M, b);
        for (const perChannel of [false, true]) {
          const scales = Array.from({ length: N }, () => Math.fround(1e-4 + r() * 2e-3));
          const ds = scales.map(dyadicFromScale);
          const mult = perChannel ? Int32Array.from(ds, (d) => d.multiplier) : ds[0].multiplier;
          const shift = perChannel ? Int32Array.from(ds, (d) => d.shift) : ds[0].shift;
          const got = await gemmS8Requant(k, a, M, b, { multiplier: mult, shift, zeroPoint: -7 });
          const want = requantizeDyadic(acc, mult, shift, -7, new Int8Array(M * N));
          assertSame(got, want, N, `${simd} M=${M} N=${N} K=${K} per-channel=${perChannel}`);
        }
      } finally {
        b.free();
      }
    }
  }
});

Deno.test("gemmS4Requant() equals gemmIntRef + requantizeRef over the shape sweep", async () => {
  const k = await intKernels("plain");
  const r = rng(303);
  let t = 0;
  for (const [M, N, K] of shapes()) {
    const a = randInts(Int8Array, M * K, -128, 127, r);
    const w = randInts(Int8Array, K * N, -8, 7, r);
    const { mult, shift } = dyadics(N, K / 12, r);
    const perChannel = t % 2 === 1;
    const m = perChannel ? mult : mult[0], s = perChannel ? shift : shift[0];
    const bias = t % 3 === 0 ? randInts(Int32Array, N, -900, 900, r) : undefined;
    const output = t % 4 === 1 ? "uint8" : "int8";
    const zp = output === "uint8" ? 100 : 2;
    const b = packS4(k, w, K, N, { layout: t % 2 ? "nk" : "kn" });
    try {
      const got = await gemmS4Requant(k, a, M, b, {
        multiplier: m,
        shift: s,
        bias,
        zeroPoint: zp,
        output,
      });
      const acc = gemmIntRef(a, M, K, w, N, t % 2 ? "nk" : "kn");
      const [lo, hi] = output === "uint8" ? [0, 255] : [-128, 127];
      const want = requantizeRef(acc, M, N, m, s, bias, zp, lo, hi, output);
      assertSame(got, want, N, `s4 M=${M} N=${N} K=${K} ${output} per-channel=${perChannel}`);
    } finally {
      b.free();
    }
    t++;
  }
});

Deno.test("gemmS8Requant() is exact at the extremes: K = 4096 of −128·−128, shifts 0 / 31 / 63, ties", async () => {
  for (const simd of intFamilies) {
    const k = await intKernels(simd);
    // −128·−128 over K = 4096: every accumulator is 2^26 (int32, no wrap).
    const K = 4096, M = 5, N = 7;
    const a = new Int8Array(M * K).fill(-128);
    const b = packS8(k, new Int8Array(K * N).fill(-128), K, N);
    try {
      const acc = gemmIntRef(a, M, K, new Int8Array(K * N).fill(-128), N);
      assert.equal(acc[0], 2 ** 26);
      const mult = Int32Array.from([2 ** 31 - 1, 2 ** 31 - 1, 2 ** 30, 1, 0, 2 ** 31 - 1, 12345]);
      const shift = Int32Array.from([0, 31, 63, 0, 5, 56, 31]);
      const bias = Int32Array.from([0, -(2 ** 26) + 3, 7, -(2 ** 26) - 100, 9, 0, 2 ** 31 - 1]);
      for (const zp of [-128, 0, 127]) {
        const got = await gemmS8Requant(k, a, M, b, {
          multiplier: mult,
          shift,
          bias,
          zeroPoint: zp,
        });
        const want = requantizeRef(acc, M, N, mult, shift, bias, zp, -128, 127);
        assertSame(got, want, N, `${simd} extremes zp=${zp}`);
        // Hand-derived: column 0 saturates up; column 3 is 1·(−100) + zp, clamped.
        assert.equal(got[0], 127);
        assert.equal(got[3], Math.max(-128, Math.min(127, -100 + zp)));
        // Column 5: 2^26·(2^31 − 1)/2^56 = 2 − 2^−30 → rounds to 2.
        assert.equal(got[5], Math.min(127, 2 + zp));
      }
    } finally {
      b.free();
    }
    // Ties: K = 1, a = x, w = 1, ×1/2 → x/2 with ties toward +∞ (−2.5 → −2, 2.5 → 3).
    const xs = Int8Array.from([5, -5, 3, -3, 1, -1, 127, -127, -128]);
    const b1 = packS8(k, Int8Array.of(1), 1, 1);
    try {
      const got = await gemmS8Requant(k, xs, xs.length, b1, { multiplier: 1, shift: 1 });
      assert.deepEqual([...got], [3, -2, 2, -1, 1, 0, 64, -63, -64]);
      // Same ties per channel with a 3-column weight: shifts 1, 2, 0.
      const b3 = packS8(k, Int8Array.of(1, 2, 1), 1, 3);
      try {
        const y = await gemmS8Requant(k, xs, xs.length, b3, {
          multiplier: Int32Array.of(1, 1, 3),
          shift: Int32Array.of(1, 2, 0),
        });
        const acc = gemmIntRef(xs, xs.length, 1, Int8Array.of(1, 2, 1), 3);
        assertSame(
          y,
          requantizeRef(
            acc,
            xs.length,
            3,
            Int32Array.of(1, 1, 3),
            Int32Array.of(1, 2, 0),
            undefined,
            0,
            -128,
            127,
          ),
          3,
          `${simd} ties`,
        );
        assert.deepEqual([...y.subarray(0, 6)], [3, 3, 15, -2, -2, -15]); // 10/4 = 2.5 → 3
      } finally {
        b3.free();
      }
    } finally {
      b1.free();
    }
  }
});

Deno.test("gemmS8Requant() equals gemmS8 then requantize() (the separate passes)", async () => {
  for (const simd of intFamilies) {
    const k = await intKernels(simd);
    const r = rng(304);
    const [M, N, K] = [33, 45, 130];
    const a = randInts(Uint8Array, M * K, 0, 255, r);
    const b = packS8(k, randInts(Int8Array, K * N, -128, 127, r), K, N);
    try {
      const opts = { aType: "u8" as const, aZeroPoint: 131, bZeroPoint: -4 };
      const { mult, shift } = dyadics(N, K, r);
      const rq = {
        multiplier: mult,
        shift,
        bias: randInts(Int32Array, N, -99, 99, r),
        zeroPoint: 4,
      };
      const acc = await gemmS8(k, a, M, b, opts);
      assertSame(await gemmS8Requant(k, a, M, b, rq, opts), requantize(k, acc, M, N, rq), N, simd);
    } finally {
      b.free();
    }
  }
});

Deno.test("gemmS8Scaled() and gemmS4Scaled() equal gemmIntRef + scaleRef", async () => {
  for (const simd of intFamilies) {
    const k = await intKernels(simd);
    const r = rng(305);
    let t = 0;
    for (const [M, N, K] of shapes()) {
      const u8 = t % 2 === 0;
      const a = u8
        ? randInts(Uint8Array, M * K, 0, 255, r)
        : randInts(Int8Array, M * K, -128, 127, r);
      const w = randInts(Int8Array, K * N, -128, 127, r);
      const za = u8 ? 7 : 0, zb = t % 3 === 0 ? -2 : 0;
      const scale = Float32Array.from({ length: N }, () => (r() - 0.3) * 1e-3);
      const bias = t % 2 ? Float32Array.from({ length: N }, () => r() - 0.5) : undefined;
      const clamp: [number, number] = t % 4 === 1 ? [-0.25, 2] : [-Infinity, Infinity];
      const b = packS8(k, w, K, N);
      try {
        const got = await gemmS8Scaled(k, a, M, b, { scale, bias, clamp }, {
          aType: u8 ? "u8" : "s8",
          aZeroPoint: za,
          bZeroPoint: zb,
        });
        const want = scaleRef(
          gemmIntRef(a, M, K, w, N, "kn", za, zb),
          M,
          N,
          scale,
          bias,
          clamp[0],
          clamp[1],
        );
        assertSame(got, want, N, `${simd} scaled M=${M} N=${N} K=${K}`);
      } finally {
        b.free();
      }
      t++;
    }
    // Accumulators beyond 2^24 (f32 cannot hold them): the product is rounded once, from f64.
    const K = 4096;
    const a = new Int8Array(3 * K).fill(-127);
    a[5] = 3;
    const w = new Int8Array(K * 2).fill(-127);
    const b = packS8(k, w, K, 2);
    try {
      const scale = Float32Array.of(Math.fround(1 / 3), Math.fround(0.1));
      const got = await gemmS8Scaled(k, a, 3, b, { scale, activation: "relu" });
      assertSame(
        got,
        scaleRef(gemmIntRef(a, 3, K, w, 2), 3, 2, scale, undefined, 0, Infinity),
        2,
        `${simd} big`,
      );
    } finally {
      b.free();
    }
  }
  const k = await intKernels("plain");
  const r = rng(306);
  for (const [M, N, K] of [[1, 17, 33], [5, 64, 255], [65, 15, 16]]) {
    const a = randInts(Int8Array, M * K, -128, 127, r);
    const w = randInts(Int8Array, K * N, -8, 7, r);
    const b = packS4(k, w, K, N);
    try {
      const got = await gemmS4Scaled(k, a, M, b, {
        scale: 0.01,
        bias: new Float32Array(N).fill(-1),
      });
      const want = scaleRef(
        gemmIntRef(a, M, K, w, N),
        M,
        N,
        0.01,
        new Float32Array(N).fill(-1),
        -Infinity,
        Infinity,
      );
      assertSame(got, want, N, `s4 scaled M=${M} N=${N} K=${K}`);
    } finally {
      b.free();
    }
  }
});

Deno.test("gemmS8Requant() and gemmS8Scaled() reject bad parameters before touching memory", async () => {
  const k = await intKernels("plain");
  const b = packS8(k, new Int8Array(6), 2, 3, { name: "fc.w" });
  const a = new Int8Array(4);
  const bad = async (f: () => Promise<unknown>, code: string, text: RegExp) => {
    await assert.rejects(f, (e: unknown) => {
      assert.ok(e instanceof LowbitError, String(e));
      assert.equal(e.code, code);
      assert.match(e.message, text);
      return true;
    });
  };
  try {
    await bad(
      () => gemmS8Requant(k, a, 2, b, { multiplier: 1, shift: 64 }),
      "INVALID_ARGUMENT",
      /shift/,
    );
    await bad(
      () => gemmS8Requant(k, a, 2, b, { multiplier: -1, shift: 3 }),
      "INVALID_ARGUMENT",
      /multiplier/,
    );
    await bad(
      () => gemmS8Requant(k, a, 2, b, { multiplier: Int32Array.of(1, 2), shift: 3 }),
      "SHAPE_MISMATCH",
      /multiplier has 2 elements/,
    );
    await bad(
      () => gemmS8Requant(k, a, 2, b, { multiplier: 1, shift: 3, bias: new Int32Array(4) }),
      "SHAPE_MISMATCH",
      /bias/,
    );
    await bad(
      () => gemmS8Requant(k, a, 2, b, { multiplier: 1, shift: 3, zeroPoint: 200 }),
      "INVALID_ARGUMENT",
      /zeroPoint/,
    );
    await bad(
      () => gemmS8Requant(k, a, 2, b, { multiplier: 1, shift: 3, output: "uint8", zeroPoint: -1 }),
      "INVALID_ARGUMENT",
      /zeroPoint/,
    );
    await bad(
      () => gemmS8Requant(k, a, 2, b, { multiplier: 1, shift: 3, output: "int4" as "int8" }),
      "UNKNOWN_NAME",
      /int4/,
    );
    await bad(
      () => gemmS8Requant(k, new Int8Array(5), 2, b, { multiplier: 1, shift: 3 }),
      "SHAPE_MISMATCH",
      /activations/,
    );
    await bad(
      () => gemmS8Scaled(k, a, 2, b, { scale: new Float32Array(2) }, { name: "fc.w" }),
      "SHAPE_MISMATCH",
      /scale has 2/,
    );
    await bad(
      () => gemmS8Scaled(k, a, 2, b, { scale: 1, clamp: [1, 0] }),
      "INVALID_ARGUMENT",
      /clamp/,
    );
  } finally {
    b.free();
  }
});

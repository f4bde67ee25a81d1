import assert from "node:assert/strict";
import { LowbitError, mulShiftRound, requantizeDyadic } from "@lowbit/core";
import {
  allocArray,
  createLocalRunner,
  gemmIntRef,
  gemmS4,
  gemmS4Grouped,
  gemmS4GroupedRef,
  gemmS4Into,
  gemmS8,
  gemmS8Into,
  gemmS8Requant,
  intKernelSources,
  loadIntKernels,
  packS4,
  packS8,
  relaxedSimdSupported,
  requantize,
  requantizeDyadicRef,
  requantizeRef,
  type WeightLayout,
} from "./mod.ts";
import { assertSame, intFamilies, intKernels, randInts, rng, shapeSweep } from "./_test_util.ts";

const DIMS = [1, 3, 15, 16, 17, 63, 64, 65, 255, 511];

/**
 * The shape sweep: each of DIMS appears on each axis, combined with a rotating partner so that
 * the run stays short; large products are skipped.
 */
function shapes(): [number, number, number][] {
  return shapeSweep(DIMS, [[3, 7], [5, 1]], 4e6);
}

for (const simd of intFamilies) {
  Deno.test(`gemmS8() equals gemmIntRef over the shape sweep (${simd}, s8 and u8)`, async () => {
    const k = await intKernels(simd);
    const r = rng(1);
    for (const [M, N, K] of shapes()) {
      const layout: WeightLayout = (M + N) % 2 ? "kn" : "nk";
      const w = randInts(Int8Array, K * N, -128, 127, r);
      const b = packS8(k, w, K, N, { layout });
      const a = randInts(Int8Array, M * K, -128, 127, r);
      const c = await gemmS8(k, a, M, b);
      assertSame(c, gemmIntRef(a, M, K, w, N, layout), N, `${simd} s8 M=${M} N=${N} K=${K}`);
      const au = randInts(Uint8Array, M * K, 0, 255, r);
      const za = Math.floor(r() * 256), zb = Math.floor(r() * 256) - 128;
      const cu = await gemmS8(k, au, M, b, { aType: "u8", aZeroPoint: za, bZeroPoint: zb });
      assertSame(cu, gemmIntRef(au, M, K, w, N, layout, za, zb), N, `${simd} u8 M=${M} N=${N}`);
      b.free();
    }
  });

  Deno.test(`gemmS8() is exact at the extremes: −128·−128 over K = 4096 (${simd})`, async () => {
    const k = await intKernels(simd);
    for (const M of [1, 5]) {
      const K = 4096, N = 9;
      const w = new Int8Array(K * N).fill(-128);
      const b = packS8(k, w, K, N);
      const c = await gemmS8(k, new Int8Array(M * K).fill(-128), M, b);
      assert.ok(c.every((v) => v === 128 * 128 * K), `M=${M}: ${c[0]}`);
      const cu = await gemmS8(k, new Uint8Array(M * K).fill(255), M, b, { aType: "u8" });
      assert.ok(cu.every((v) => v === -255 * 128 * K), `u8 M=${M}: ${cu[0]}`);
      b.free();
    }
  });
}

Deno.test("gemmS8() gives the same bits with plain and relaxed kernels", {
  ignore: !relaxedSimdSupported(),
}, async () => {
  const r = rng(7);
  const [M, N, K] = [33, 47, 300];
  const w = randInts(Int8Array, K * N, -128, 127, r);
  const a = randInts(Int8Array, M * K, -128, 127, r);
  const out = [];
  for (const simd of ["plain", "relaxed"] as const) {
    const k = await intKernels(simd);
    out.push(await gemmS8(k, a, M, packS8(k, w, K, N)));
  }
  assertSame(out[0], out[1], N, "plain vs relaxed");
});

Deno.test("gemmS4() equals gemmIntRef over the shape sweep (per channel)", async () => {
  const k = await intKernels("plain");
  const r = rng(2);
  for (const [M, N, K] of shapes()) {
    const layout: WeightLayout = (M + K) % 2 ? "kn" : "nk";
    const w = randInts(Int8Array, K * N, -8, 7, r);
    const b = packS4(k, w, K, N, { layout });
    const a = randInts(Int8Array, M * K, -128, 127, r);
    assertSame(await gemmS4(k, a, M, b), gemmIntRef(a, M, K, w, N, layout), N, `s4 ${M}×${N}×${K}`);
    b.free();
  }
  const K = 4096, b = packS4(k, new Int8Array(K * 3).fill(-8), K, 3);
  const c = await gemmS4(k, new Int8Array(2 * K).fill(-128), 2, b);
  assert.ok(c.every((v) => v === 1024 * K), "−128·−8 over K = 4096");
});

Deno.test("gemmS4Grouped() equals gemmS4GroupedRef bit for bit (groups 32, 64, 128)", async () => {
  const k = await intKernels("plain");
  const r = rng(3);
  for (const group of [32, 64, 128] as const) {
    for (const [M, N, K] of [[1, 17, 255], [3, 16, 64], [15, 3, 511], [5, 65, 129], [4, 1, 1]]) {
      const G = Math.ceil(K / group);
      const w = randInts(Int8Array, K * N, -8, 7, r);
      const scales = new Float32Array(N * G).map(() => Math.fround(r() * 0.1 + 1e-3));
      const b = packS4(k, w, K, N, { group, scales, layout: "nk" });
      const a = randInts(Int8Array, M * K, -128, 127, r);
      const got = await gemmS4Grouped(k, a, M, b);
      const want = gemmS4GroupedRef(a, M, K, w, N, "nk", group, scales);
      assertSame(got, want, N, `s4 g${group} ${M}×${N}×${K}`);
      b.free();
    }
  }
});

Deno.test("requantize() equals requantizeRef: rounding ties, saturation, relu", async () => {
  const k = await intKernels("plain");
  const r = rng(4);
  const M = 7, N = 13;
  const acc = new Int32Array(M * N).map(() => Math.floor((r() - 0.5) * 2 ** 32) | 0);
  acc.set([0x7fffffff, -0x80000000, 1, -1, 3, -3, 5, -5]);
  const mult = new Int32Array(N).map((_, j) => j === 0 ? 2 ** 31 - 1 : Math.floor(r() * 2 ** 31));
  const shift = new Int32Array(N).map((_, j) => [0, 1, 31, 40, 63][j % 5]);
  const bias = new Int32Array(N).map(() => Math.floor((r() - 0.5) * 2 ** 20));
  for (const zp of [-5, 0, 17]) {
    const got = requantize(k, acc, M, N, { multiplier: mult, shift, bias, zeroPoint: zp });
    assertSame(got, requantizeRef(acc, M, N, mult, shift, bias, zp, -128, 127), N, `zp=${zp}`);
    const relu = requantize(k, acc, M, N, {
      multiplier: mult,
      shift,
      zeroPoint: zp,
      activation: "relu",
    });
    assertSame(relu, requantizeRef(acc, M, N, mult, shift, undefined, zp, zp, 127), N, "relu");
  }
  // Ties: 2^30/2^31 scales by 1/2; .5 goes toward +∞.
  const ties = requantize(k, new Int32Array([1, 3, 5, -1, -3, -5]), 1, 6, {
    multiplier: 2 ** 30,
    shift: 31,
  });
  assert.deepEqual([...ties], [1, 2, 3, 0, -1, -2]);
});

Deno.test("gemmS8Requant() equals gemmS8 then requantizeRef", async () => {
  const k = await intKernels("plain");
  const r = rng(5);
  const [M, N, K] = [17, 15, 65];
  const w = randInts(Int8Array, K * N, -128, 127, r);
  const a = randInts(Int8Array, M * K, -128, 127, r);
  const b = packS8(k, w, K, N);
  const mult = new Int32Array(N).map(() => Math.floor(r() * 2 ** 31));
  const shift = new Int32Array(N).fill(38);
  const y = await gemmS8Requant(k, a, M, b, { multiplier: mult, shift, zeroPoint: 3 });
  const want = requantizeRef(gemmIntRef(a, M, K, w, N), M, N, mult, shift, undefined, 3, -128, 127);
  assertSame(y, want, N, "fused");
});

Deno.test("requantize() equals @lowbit/core requantizeDyadic bit for bit", async () => {
  const k = await intKernels("plain");
  const r = rng(6);
  const M = 50, N = 16;
  const acc = new Int32Array(M * N).map(() => Math.floor((r() - 0.5) * 2 ** 32) | 0);
  for (let i = 0; i < 64; i++) {
    acc[i] = [0, 1, -1, 2, -2, 3, -3, 0x7fffffff, -0x80000000][i % 9] << (i % 5);
  }
  const mult = new Int32Array(N).map((_, j) =>
    j < 2 ? [0, 2 ** 31 - 1][j] : Math.floor(r() * 2 ** 31)
  );
  const shift = new Int32Array(N).map((_, j) =>
    [0, 1, 2, 16, 17, 30, 31, 32, 40, 50, 62, 63][j % 12]
  );
  for (const zp of [-128, -7, 0, 5, 127]) {
    const want = requantizeDyadic(acc, mult, shift, zp, new Int8Array(M * N));
    const got = requantize(k, acc, M, N, { multiplier: mult, shift, zeroPoint: zp });
    assertSame(got, want, N, `zp=${zp}`);
  }
  for (let t = 0; t < 3000; t++) {
    const x = Math.floor((r() - 0.5) * 2 ** 32) | 0;
    const m = Math.floor(r() * 2 ** 31), s = Math.floor(r() * 64);
    const ref = requantizeDyadicRef(x, m, s), core = mulShiftRound(x, m, s);
    // core is exact when it matters (|result| small); beyond 2^36 only sign and size count.
    if (Math.abs(ref) < 2 ** 36) assert.equal(core, ref, `x=${x} m=${m} s=${s}`);
    else assert.equal(Math.sign(core), Math.sign(ref));
  }
});

Deno.test("gemmS8() and packS8() reject bad input before touching memory", async () => {
  const k = await intKernels("plain");
  const code = (f: () => unknown, c: string) =>
    assert.throws(f, (e: unknown) => e instanceof LowbitError && e.code === c);
  const before = k.runner.memory.buffer.byteLength;
  code(() => packS8(k, new Int8Array(5), 2, 3), "SHAPE_MISMATCH");
  code(() => packS8(k, new Int8Array(6), 2, 3, { layout: "xy" as WeightLayout }), "UNKNOWN_NAME");
  code(() => packS8(k, new Int8Array(6), 0, 3), "INVALID_ARGUMENT");
  code(() => packS4(k, new Int8Array(6).fill(9), 2, 3), "INVALID_ARGUMENT");
  code(() => packS4(k, new Int8Array(6), 2, 3, { group: 16 as 32 }), "INVALID_ARGUMENT");
  const b = packS8(k, new Int8Array(6), 2, 3);
  await assert.rejects(
    () => gemmS8(k, new Int8Array(5), 2, b),
    (e: unknown) =>
      e instanceof LowbitError && e.code === "SHAPE_MISMATCH" &&
      /activations \(M×K = 2×2\)/.test(e.message),
  );
  await assert.rejects(() => gemmS8(k, new Uint8Array(4), 2, b), LowbitError);
  await assert.rejects(() => gemmS8(k, new Int8Array(4), 2, b, { aZeroPoint: 300 }), LowbitError);
  code(
    () => requantize(k, new Int32Array(6), 2, 3, { multiplier: -1, shift: 3 }),
    "INVALID_ARGUMENT",
  );
  code(
    () => requantize(k, new Int32Array(6), 2, 3, { multiplier: 1, shift: 64 }),
    "INVALID_ARGUMENT",
  );
  assert.equal(k.runner.memory.buffer.byteLength, before);
  b.free();
});

Deno.test("packS8() fails with OUT_OF_MEMORY, not a trap, past the memory maximum", async () => {
  const { createLocalRunner, intKernelSources } = await import("./mod.ts");
  const runner = await createLocalRunner(intKernelSources(), { maxPages: 64 }); // 4 MiB
  const k = await loadIntKernels({ runner, simd: "plain" });
  const K = 4096, N = 2048; // 8 MiB packed
  assert.throws(
    () => packS8(k, new Int8Array(K * N), K, N),
    (e: unknown) => e instanceof LowbitError && e.code === "OUT_OF_MEMORY",
  );
  const small = packS8(k, new Int8Array(64 * 64), 64, 64); // memory still usable
  small.free();
});

Deno.test("gemmS8Into() / gemmS4Into() on kernel arrays equal gemmIntRef, with and without padding", async () => {
  const r = rng(77);
  for (const simd of relaxedSimdSupported() ? ["plain", "relaxed"] as const : ["plain"] as const) {
    const k = await loadIntKernels({ simd });
    // K = 64 runs on A in place; K = 37 needs zero-padded rows, so A is copied.
    for (const [M, N, K] of [[5, 9, 64], [1, 33, 64], [17, 3, 37]]) {
      const w = randInts(Int8Array, K * N, -128, 127, r);
      const a = randInts(Int8Array, M * K, -128, 127, r);
      const b = packS8(k, w, K, N);
      const ka = allocArray(k.runner, "s8", M * K);
      ka.view().set(a);
      const c = allocArray(k.runner, "s32", M * N);
      await gemmS8Into(k, ka, M, b, c);
      assertSame(c.view(), gemmIntRef(a, M, K, w, N), N, `${simd} s8 into ${M}×${N}×${K}`);
      // u8 with both zero points: rowsum and fix-up run through the runner too.
      const au = new Uint8Array(a.buffer);
      const ku = allocArray(k.runner, "u8", M * K);
      ku.view().set(au);
      await gemmS8Into(k, ku, M, b, c, { aType: "u8", aZeroPoint: 131, bZeroPoint: -3 });
      const want = gemmIntRef(au, M, K, w, N, "kn", 131, -3);
      assertSame(c.view(), want, N, `${simd} u8 into ${M}×${N}×${K}`);
      assert.deepEqual(ka.view(), a, "A is left as it was");
      b.free();
      if (simd === "plain") {
        const w4 = randInts(Int8Array, K * N, -8, 7, r);
        const b4 = packS4(k, w4, K, N);
        await gemmS4Into(k, ka, M, b4, c);
        assertSame(c.view(), gemmIntRef(a, M, K, w4, N), N, `s4 into ${M}×${N}×${K}`);
        b4.free();
      }
      for (const x of [ka, ku, c]) x.free();
    }
  }
});

Deno.test("gemmS8Into() rejects outputs and activations that do not fit, naming the tensor", async () => {
  const k = await loadIntKernels({ simd: "plain" });
  const other = await createLocalRunner(intKernelSources());
  const b = packS8(k, new Int8Array(32 * 4), 32, 4);
  const a = allocArray(k.runner, "s8", 2 * 32);
  const c = allocArray(k.runner, "s32", 2 * 4);
  const is = (code: string, re: RegExp) => (e: unknown) => {
    assert.ok(e instanceof LowbitError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, re);
    assert.match(e.message, /fc1/);
    return true;
  };
  const short = allocArray(k.runner, "s32", 7);
  await assert.rejects(
    () => gemmS8Into(k, a, 2, b, short, { name: "fc1" }),
    is("SHAPE_MISMATCH", /output \(M×N = 2×4\) has 7 elements, expected 8/),
  );
  const foreign = allocArray(other, "s32", 8);
  await assert.rejects(
    () => gemmS8Into(k, a, 2, b, foreign, { name: "fc1" }),
    is("INVALID_ARGUMENT", /'s32' kernel array of these kernels' runner/),
  );
  await assert.rejects(
    () => gemmS8Into(k, a, 2, b, c, { aType: "u8", name: "fc1" }),
    is("INVALID_ARGUMENT", /'s8' kernel array, aType is 'u8'/),
  );
  const foreignA = allocArray(other, "s8", 2 * 32);
  await assert.rejects(
    () => gemmS8Into(k, foreignA, 2, b, c, { name: "fc1" }),
    is("INVALID_ARGUMENT", /another runner's memory/),
  );
  await assert.rejects(
    () => gemmS8Into(k, a, 3, b, allocArray(k.runner, "s32", 12), { name: "fc1" }),
    is("SHAPE_MISMATCH", /activations \(M×K = 3×32\) has 64 elements, expected 96/),
  );
  b.free();
});

Deno.test("gemmS8() writes into opts.out when given, and checks its length", async () => {
  const k = await loadIntKernels({ simd: "plain" });
  const r = rng(5);
  const w = randInts(Int8Array, 40 * 6, -128, 127, r),
    a = randInts(Int8Array, 3 * 40, -128, 127, r);
  const b = packS8(k, w, 40, 6);
  const out = new Int32Array(18).fill(-1);
  const c = await gemmS8(k, a, 3, b, { out });
  assert.equal(c, out);
  assertSame(out, gemmIntRef(a, 3, 40, w, 6), 6, "out");
  await assert.rejects(
    () => gemmS8(k, a, 3, b, { out: new Int32Array(17), name: "proj" }),
    /proj.*out \(M×N = 3×6\) has 17 elements, expected 18/,
  );
  b.free();
});

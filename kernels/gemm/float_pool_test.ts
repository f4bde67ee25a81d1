import assert from "node:assert/strict";
import { createPool } from "@lowbit/runtime";
import {
  conv2dF32,
  conv2dF32Parallel,
  createFloatKernelsOn,
  depthwiseConv2dF32,
  depthwiseConv2dF32Parallel,
  floatKernelSources,
  freeResidentF32,
  gemmF32,
  gemmF32Parallel,
  gemmMinifloat,
  gemmMinifloatParallel,
  packF32B,
  packMinifloatB,
  prepareConv2dF32,
  residentF32,
} from "./float.ts";
import { refConv2dF32, refGemmF32 } from "./reference_float.ts";
import { randF32, rng } from "./_test_util.ts";
import { decodeMinifloatWeights } from "./float.ts";

Deno.test("gemmF32Parallel() / gemmMinifloatParallel() on 2 threads equal one thread and the reference", async () => {
  const pool = await createPool({ modules: floatKernelSources(), threads: 2 });
  try {
    const k = createFloatKernelsOn(pool);
    let s = 7;
    const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    for (const [m, n, kk] of [[1, 300, 77], [37, 270, 65], [4, 513, 40]]) {
      const a = Float32Array.from({ length: m * kk }, r),
        b = Float32Array.from({ length: kk * n }, r);
      const bias = Float32Array.from({ length: n }, r);
      const p = packF32B(b, kk, n, { kernels: k });
      const par = await gemmF32Parallel(a, m, p, { bias, activation: "relu" });
      assert.deepEqual(par, gemmF32(a, m, p, { bias, activation: "relu" }));
      assert.deepEqual(par, refGemmF32(a, b, m, kk, n, k.madd, { bias, lo: 0 }));
      const codes = Uint8Array.from({ length: kk * n }, () => Math.floor((r() + 1) * 8) & 15);
      const scales = Uint8Array.from(
        { length: Math.ceil(kk / 32) * n },
        () => 120 + Math.floor((r() + 1) * 4),
      );
      const spec = { format: "mxfp4" as const, k: kk, n, codes, scales };
      const w = packMinifloatB(spec, k);
      const mpar = await gemmMinifloatParallel(a, m, w, { bias });
      assert.deepEqual(mpar, gemmMinifloat(a, m, w, { bias }));
      assert.deepEqual(
        mpar,
        refGemmF32(a, decodeMinifloatWeights(spec), m, kk, n, k.madd, { bias }),
      );
      p.dispose();
      w.dispose();
    }
  } finally {
    pool.close();
  }
});

Deno.test("conv2dF32Parallel() / depthwiseConv2dF32Parallel() on 2 threads equal one thread and the reference, post-ops included", async () => {
  for (const isa of ["wasmsimd", "auto"] as const) {
    const pool = await createPool({ modules: floatKernelSources(isa), threads: 2 });
    try {
      const k = createFloatKernelsOn(pool);
      const r = rng(11);
      // [input, weight, group, strides, pads, dilations]: dense (padded, strided, 1×1, grouped,
      // odd pixel counts so that the split leaves a column tail) and depthwise (3×3, 5×5, s2);
      // each above the size that runs on the calling thread alone.
      const cases: [
        [number, number, number, number],
        [number, number, number, number],
        number,
        [number, number],
        [number, number, number, number],
        [number, number],
      ][] = [
        [[1, 8, 37, 41], [24, 8, 3, 3], 1, [1, 1], [1, 1, 1, 1], [1, 1]],
        [[2, 16, 29, 30], [40, 16, 1, 1], 1, [1, 1], [0, 0, 0, 0], [1, 1]],
        // 1×1 with bottom / right padding only (output pixel p is not input pixel p)
        [[1, 16, 29, 30], [40, 16, 1, 1], 1, [1, 1], [0, 0, 2, 0], [1, 1]],
        [[1, 16, 29, 30], [40, 16, 1, 1], 1, [1, 1], [0, 0, 1, 1], [1, 1]],
        [[1, 12, 80, 66], [20, 6, 3, 3], 2, [2, 2], [1, 0, 1, 2], [1, 1]],
        [[1, 4, 64, 64], [40, 4, 3, 3], 1, [1, 1], [2, 2, 2, 2], [2, 2]],
        [[2, 32, 64, 38], [32, 1, 3, 3], 32, [1, 1], [1, 1, 1, 1], [1, 1]],
        [[1, 64, 81, 80], [64, 1, 5, 5], 64, [2, 2], [2, 2, 2, 2], [1, 1]],
        // batches of small images: split by whole images (3 images on 2 threads)
        [[3, 16, 30, 31], [48, 16, 3, 3], 1, [1, 1], [1, 1, 1, 1], [1, 1]],
        [[3, 96, 40, 41], [96, 1, 3, 3], 96, [2, 2], [1, 1, 1, 1], [1, 1]],
      ];
      for (const [input, weight, group, strides, pads, dilations] of cases) {
        const x = randF32(input.reduce((a, b) => a * b), r);
        const w = randF32(weight.reduce((a, b) => a * b), r, 0.5);
        const bias = randF32(weight[0], r);
        const opts = { group, strides, pads, dilations, bias, kernels: k };
        const depthwise = group === input[1] && weight[1] === 1 && weight[0] === input[1];
        const activation = { min: -0.5, max: 1.5 };
        const single = (depthwise ? depthwiseConv2dF32 : conv2dF32)(x, input, w, weight, {
          ...opts,
          activation,
        });
        const par = await (depthwise ? depthwiseConv2dF32Parallel : conv2dF32Parallel)(
          x,
          input,
          w,
          weight,
          { ...opts, activation },
        );
        const what = `${isa} input [${input}] weight [${weight}] group ${group}`;
        assert.deepEqual(par.shape, single.shape, what);
        assert.deepEqual(par.data, single.data, what);
        const g = { input, weight, group, strides, pads, dilations };
        assert.deepEqual(
          par.data,
          refConv2dF32(x, w, g, k.madd, { bias, lo: -0.5, hi: 1.5 }),
          what,
        );
        const prepared = prepareConv2dF32(w, weight, k);
        const again = await (depthwise ? depthwiseConv2dF32Parallel : conv2dF32Parallel)(
          x,
          input,
          prepared,
          { ...opts, activation },
        );
        assert.deepEqual(again.data, single.data, `${what} (prepared)`);
        prepared.dispose();
        // Post-ops: the same bits as the separate f32 steps Add(3), Clip(0, 6), Mul(x), Div(6),
        // Mul(0.75), Add(-0.125) applied to the plain output.
        const post = { hardswish: true, mul: 0.75, add: -0.125 };
        const f = Math.fround;
        const want = single.data.map((v) => {
          const h = f(f(v * Math.min(6, Math.max(0, f(v + 3)))) / 6);
          return f(f(h * 0.75) + -0.125);
        });
        const withPost = { ...opts, activation, post };
        const fused = await (depthwise ? depthwiseConv2dF32Parallel : conv2dF32Parallel)(
          x,
          input,
          w,
          weight,
          withPost,
        );
        assert.deepEqual(fused.data, want, `${what} (post-ops, 2 threads)`);
        const fused1 = (depthwise ? depthwiseConv2dF32 : conv2dF32)(x, input, w, weight, withPost);
        assert.deepEqual(fused1.data, want, `${what} (post-ops, 1 thread)`);
        // Per-channel scale, pre-affine, HardSwish, affine and quantization to centred codes:
        // the scalar reference's bits on 1 and 2 threads.
        const scale = randF32(weight[0], r, 2);
        const full = {
          preMul: 1.25,
          preAdd: 0.5,
          hardswish: true,
          mul: 0.75,
          add: -0.125,
          quantize: { scale: 0.0123, lo: -100, hi: 127 },
        };
        const wantQ = refConv2dF32(x, w, g, k.madd, {
          scale,
          bias,
          lo: -0.5,
          hi: 1.5,
          post: full,
        });
        const withQ = { ...opts, scale, activation, post: full };
        const q2 = await (depthwise ? depthwiseConv2dF32Parallel : conv2dF32Parallel)(
          x,
          input,
          w,
          weight,
          withQ,
        );
        assert.deepEqual(q2.data, wantQ, `${what} (scale + quantize, 2 threads)`);
        const q1 = (depthwise ? depthwiseConv2dF32 : conv2dF32)(x, input, w, weight, withQ);
        assert.deepEqual(q1.data, wantQ, `${what} (scale + quantize, 1 thread)`);
        assert.ok(wantQ.every((v) => Number.isInteger(v) && v >= -100 && v <= 127), what);
        // The same with DequantizeLinear after the quantization (the fused int8 Q → DQ pair).
        const fullDq = { ...full, dequantize: { nanCode: 7 } };
        const wantDq = refConv2dF32(x, w, g, k.madd, {
          scale,
          bias,
          lo: -0.5,
          hi: 1.5,
          post: fullDq,
        });
        const withDq = { ...opts, scale, activation, post: fullDq };
        const d2 = await (depthwise ? depthwiseConv2dF32Parallel : conv2dF32Parallel)(
          x,
          input,
          w,
          weight,
          withDq,
        );
        assert.deepEqual(d2.data, wantDq, `${what} (quantize + dequantize, 2 threads)`);
        const d1 = (depthwise ? depthwiseConv2dF32 : conv2dF32)(x, input, w, weight, withDq);
        assert.deepEqual(d1.data, wantDq, `${what} (quantize + dequantize, 1 thread)`);
        assert.deepEqual(wantDq, wantQ.map((c) => Math.fround(c * Math.fround(0.0123))), what);
      }
    } finally {
      pool.close();
    }
  }
});

Deno.test("conv2dF32Parallel() reads and writes residentF32() arrays in place with the same bits", async () => {
  const pool = await createPool({ modules: floatKernelSources("wasmsimd"), threads: 2 });
  try {
    const k = createFloatKernelsOn(pool);
    const r = rng(21);
    const input: [number, number, number, number] = [1, 8, 40, 44];
    const weight: [number, number, number, number] = [16, 8, 3, 3];
    const x = randF32(8 * 40 * 44, r), w = randF32(16 * 8 * 9, r, 0.5);
    const opts = { pads: [1, 1, 1, 1] as [number, number, number, number], kernels: k };
    const want = (await conv2dF32Parallel(x, input, w, weight, opts)).data;
    const rx = residentF32(k, x.length), ry = residentF32(k, want.length);
    rx.set(x);
    const got = await conv2dF32Parallel(rx, input, w, weight, { ...opts, out: ry });
    assert.equal(got.data, ry);
    assert.deepEqual(Float32Array.from(ry), want);
    assert.deepEqual(Float32Array.from(rx), x, "the input is not modified");
    freeResidentF32(rx);
    freeResidentF32(ry);
  } finally {
    pool.close();
  }
});

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { loadIntKernels } from "./int.ts";
import {
  gemmMinifloatS8,
  type MinifloatS8Format,
  type MinifloatS8Weights,
  packMinifloatS8,
} from "./minifloat_s8.ts";
import { decodeMinifloat, refGemmMinifloatS8 } from "./reference_float.ts";
import { rng } from "./_test_util.ts";

const AXIS = [1, 3, 15, 16, 17, 63, 64, 65, 255, 511];
const FORMATS: MinifloatS8Format[] = ["fp4_e2m1fn", "fp6_e2m3fn"];

function codes(format: MinifloatS8Format, len: number, r: () => number): Uint8Array {
  return Uint8Array.from(
    { length: len },
    () => Math.floor(r() * (format === "fp4_e2m1fn" ? 16 : 64)),
  );
}

function int8(len: number, r: () => number): Int8Array {
  return Int8Array.from({ length: len }, () => Math.floor(r() * 256) - 128);
}

function transpose(c: Uint8Array, k: number, n: number): Uint8Array {
  const t = new Uint8Array(k * n);
  for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) t[j * k + i] = c[i * n + j];
  return t;
}

function assertSame(got: Float32Array, want: Float32Array, what: string, n: number): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(got[i], want[i])) {
      assert.fail(`${what}: Y[${Math.floor(i / n)}][${i % n}] = ${got[i]}, reference ${want[i]}`);
    }
  }
}

Deno.test("refGemmMinifloatS8() equals the float sum of decoded weights on a hand case", () => {
  // fp6 e2m3: 0b011111 = 7.5, 0b100001 = −0.125 (subnormal); fp4: 0b0001 = 0.5, 0b1111 = −6
  const y6 = refGemmMinifloatS8(
    new Int8Array([2, -128]),
    new Uint8Array([31, 33]),
    1,
    2,
    1,
    "fp6_e2m3fn",
  );
  assert.deepEqual([...y6], [2 * 7.5 + -128 * -0.125]);
  const y4 = refGemmMinifloatS8(
    new Int8Array([127, 1]),
    new Uint8Array([1, 15]),
    1,
    2,
    1,
    "fp4_e2m1fn",
    {
      channelScale: new Float32Array([0.25]),
      aScale: 2,
      bias: new Float32Array([1]),
    },
  );
  assert.deepEqual([...y4], [(127 * 0.5 - 6) * 0.25 * 2 + 1]);
  for (const f of FORMATS) {
    for (let c = 0; c < (f === "fp4_e2m1fn" ? 16 : 64); c++) {
      const v = refGemmMinifloatS8(new Int8Array([1]), new Uint8Array([c]), 1, 1, 1, f)[0];
      assert.equal(v, decodeMinifloat(f, c) + 0, `${f} code ${c}`); // −0 sums to +0
    }
  }
});

Deno.test("gemmMinifloatS8() equals the reference exactly over the shape sweep, GEMM and GEMV", async () => {
  const k = await loadIntKernels();
  const r = rng(31);
  const small = [3, 17, 64, 1, 65, 15, 16, 63];
  let t = 0;
  for (const format of FORMATS) {
    const shapes: [number, number, number][] = [];
    AXIS.forEach((v, i) => {
      const a = small[i % small.length], b = small[(i + 3) % small.length];
      shapes.push([v, a, b], [a, v, b], [a, b, v]);
    });
    shapes.push([1, 300, 4096]);
    for (const [m, n, kk] of shapes) {
      const c = codes(format, kk * n, r);
      const a = int8(m * kk, r);
      const layout = t++ % 2 ? "nk" : "kn";
      const channelScale = t % 3 ? Float32Array.from({ length: n }, () => r() * 2) : undefined;
      const bias = t % 4 === 0 ? Float32Array.from({ length: n }, () => r() - 0.5) : undefined;
      const aScale = t % 5 ? 0.03125 * (1 + r()) : undefined;
      const w: MinifloatS8Weights = {
        format,
        k: kk,
        n,
        codes: layout === "kn" ? c : transpose(c, kk, n),
        layout,
        channelScale,
      };
      const p = packMinifloatS8(k, w);
      const got = await gemmMinifloatS8(k, a, m, p, { aScale, bias });
      const want = refGemmMinifloatS8(a, c, m, kk, n, format, { channelScale, aScale, bias });
      assertSame(got, want, `${format} M=${m} N=${n} K=${kk} ${layout}`, n);
      p.free();
    }
  }
});

Deno.test("gemmMinifloatS8() sums −128 · −12 over K = 4096 exactly (fp4) and −128 · 60 (fp6)", async () => {
  const k = await loadIntKernels();
  const K = 4096, N = 9;
  const a = new Int8Array(K).fill(-128);
  const c4 = new Uint8Array(K * N).fill(0b1111); // −6 → −12
  const p4 = packMinifloatS8(k, { format: "fp4_e2m1fn", k: K, n: N, codes: c4 });
  // Σ = 4096 · 1536 = 6291456 (exact in f32), · 1/2
  assert.deepEqual([...await gemmMinifloatS8(k, a, 1, p4)], new Array(N).fill(3145728));
  const c6 = new Uint8Array(K * N).fill(0b011111); // 7.5 → 60
  const p6 = packMinifloatS8(k, { format: "fp6_e2m3fn", k: K, n: N, codes: c6 });
  const a2 = new Int8Array(2 * K).fill(-128);
  assert.deepEqual([...await gemmMinifloatS8(k, a2, 2, p6)], new Array(2 * N).fill(-128 * 7.5 * K));
  p4.free();
  p6.free();
});

Deno.test("packMinifloatS8() and gemmMinifloatS8() reject bad input with named errors", async () => {
  const k = await loadIntKernels();
  const bad = (f: () => unknown, code: string, re: RegExp) =>
    assert.throws(
      f,
      (e: unknown) => e instanceof LowbitError && e.code === code && re.test(e.message),
    );
  bad(
    () =>
      packMinifloatS8(k, {
        format: "fp8_e4m3fn" as MinifloatS8Format,
        k: 1,
        n: 1,
        codes: new Uint8Array(1),
      }),
    "UNKNOWN_NAME",
    /no exact int8 path.*fp4_e2m1fn, fp6_e2m3fn/,
  );
  bad(
    () => packMinifloatS8(k, { format: "fp4_e2m1fn", k: 2, n: 2, codes: new Uint8Array(3) }),
    "SHAPE_MISMATCH",
    /codes \(2×2\) has 3 elements, expected 4/,
  );
  bad(
    () => packMinifloatS8(k, { format: "fp4_e2m1fn", k: 1, n: 2, codes: new Uint8Array([0, 16]) }),
    "INVALID_TENSOR",
    /0x10 at \(k=0, n=1\) is not a 4-bit code/,
  );
  bad(
    () =>
      packMinifloatS8(k, {
        format: "fp6_e2m3fn",
        k: 2,
        n: 1,
        codes: new Uint8Array([64, 0]),
        layout: "nk",
      }),
    "INVALID_TENSOR",
    /0x40 at \(k=0, n=0\) is not a 6-bit code/,
  );
  bad(
    () =>
      packMinifloatS8(k, {
        format: "fp4_e2m1fn",
        k: 1,
        n: 2,
        codes: new Uint8Array(2),
        channelScale: new Float32Array(3),
      }),
    "SHAPE_MISMATCH",
    /channelScale has 3 elements, expected 2/,
  );
  const p = packMinifloatS8(k, { format: "fp4_e2m1fn", k: 2, n: 2, codes: new Uint8Array(4) });
  await assert.rejects(
    () => gemmMinifloatS8(k, new Int8Array(3), 2, p),
    (e: unknown) => e instanceof LowbitError && /activations \(M×K = 2×2\)/.test(e.message),
  );
  await assert.rejects(
    () => gemmMinifloatS8(k, new Int8Array(4), 2, p, { bias: new Float32Array(1) }),
    (e: unknown) => e instanceof LowbitError && /bias has 1 elements, expected 2/.test(e.message),
  );
  p.free();
});

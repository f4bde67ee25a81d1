// qdqFp8F32 (assembly qdq_fp8_f32: float8 QuantizeLinear → DequantizeLinear in one SIMD pass)
// against a brute-force reference written from the format definitions: every finite code's value
// is listed, and v = f32(x / s) goes to the nearest one (ties: the even code), saturating at the
// largest; y = f32(±r·s). Inputs: every code value, every midpoint between neighbours (ties),
// their f32 neighbours, subnormal and out-of-range values, ±0, ±∞, NaN, random magnitudes.
// The scalar twin refQdqFp8 and the conv epilogue's post-op qdqFp8 are checked against the same
// brute force.

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { conv2dF32, depthwiseConv2dF32, qdqFp8F32 } from "./float.ts";
import { refQdqFp8 } from "./reference_float.ts";
import { floatContexts, rng } from "./_test_util.ts";

type Fmt = "fp8_e4m3fn" | "fp8_e5m2";

/** [code, value] of every finite non-negative code, ascending. */
function codes(fmt: Fmt): [number, number][] {
  const [mb, bias, top] = fmt === "fp8_e4m3fn" ? [3, 7, 0x7e] : [2, 15, 0x7b];
  const out: [number, number][] = [];
  for (let c = 0; c <= top; c++) {
    const e = c >> mb, m = c & ((1 << mb) - 1);
    out.push([c, e === 0 ? m * 2 ** (1 - bias - mb) : (1 + m / 2 ** mb) * 2 ** (e - bias)]);
  }
  return out;
}

function refQdq(x: number, s: number, fmt: Fmt): number {
  const table = codes(fmt);
  const max = table[table.length - 1][1];
  const v = Math.fround(x / s);
  if (Number.isNaN(v)) return NaN;
  const a = Math.abs(v);
  let r: number;
  if (a >= max) r = max;
  else {
    let i = 0;
    while (table[i + 1][1] <= a) i++;
    const [c0, lo] = table[i], [, hi] = table[i + 1];
    r = a - lo < hi - a ? lo : a - lo > hi - a ? hi : c0 % 2 === 0 ? lo : hi;
  }
  return Math.fround((Object.is(v, -0) || v < 0 ? -r : r) * s);
}

function inputs(fmt: Fmt): Float32Array {
  const t = codes(fmt).map(([, v]) => v);
  const xs: number[] = [0, -0, Infinity, -Infinity, NaN, 1e-45, -1e-45, 1e-40, 3e38, -3e38];
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  const near = (v: number): void => {
    f[0] = v;
    const b = u[0];
    for (const d of [-1, 1]) {
      u[0] = b + d;
      xs.push(f[0], -f[0]);
    }
    xs.push(v, -v);
  };
  for (let i = 0; i < t.length; i++) {
    near(t[i]);
    if (i + 1 < t.length) near((t[i] + t[i + 1]) / 2);
  }
  near(t[t.length - 1] * 1.0625);
  near(t[t.length - 1] * 2);
  const r = rng(7);
  for (let i = 0; i < 2000; i++) xs.push((r() * 2 - 1) * 2 ** (r() * 60 - 30));
  return Float32Array.from(xs);
}

for (const k of floatContexts()) {
  Deno.test(`qdqFp8F32() equals the brute-force float8 rounding bit for bit (${k.isa})`, () => {
    for (const fmt of ["fp8_e4m3fn", "fp8_e5m2"] as const) {
      const x = inputs(fmt);
      for (const s of [1, 0.37, 3e-3, 1024].map(Math.fround)) {
        const y = qdqFp8F32(x, s, fmt, { kernels: k });
        for (let i = 0; i < x.length; i++) {
          const want = refQdq(x[i], s, fmt);
          const same = Object.is(y[i], want) || (Number.isNaN(y[i]) && Number.isNaN(want));
          if (!same) assert.fail(`${fmt} s=${s}: x=${x[i]} → ${y[i]}, reference ${want}`);
        }
        // In place (out = x): the same values.
        const xi = x.slice();
        assert.equal(qdqFp8F32(xi, s, fmt, { kernels: k, out: xi }), xi);
        assert.deepEqual(new Uint32Array(xi.buffer), new Uint32Array(y.buffer), `${fmt} in place`);
      }
    }
  });
}

Deno.test("qdqFp8F32() rejects a bad scale, format or output length with LowbitError", () => {
  const x = new Float32Array(4);
  for (
    const f of [
      () => qdqFp8F32(x, 0, "fp8_e4m3fn"),
      () => qdqFp8F32(x, NaN, "fp8_e5m2"),
      () => qdqFp8F32(x, 1, "fp4" as "fp8_e5m2"),
      // an Object.prototype key is not a format either
      () => qdqFp8F32(x, 1, "toString" as "fp8_e5m2"),
      () => qdqFp8F32(x, 1, "fp8_e4m3fn", { out: new Float32Array(3) }),
    ]
  ) assert.throws(f, LowbitError);
});

Deno.test("refQdqFp8() equals the brute-force float8 rounding bit for bit", () => {
  for (const fmt of ["fp8_e4m3fn", "fp8_e5m2"] as const) {
    const x = inputs(fmt);
    for (const s of [1, 0.37, 3e-3, 1024].map(Math.fround)) {
      for (let i = 0; i < x.length; i++) {
        const got = refQdqFp8(x[i], s, fmt), want = refQdq(x[i], s, fmt);
        const same = Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want));
        if (!same) assert.fail(`${fmt} s=${s}: x=${x[i]} → ${got}, reference ${want}`);
      }
    }
  }
});

for (const k of floatContexts()) {
  Deno.test(`conv post-op qdqFp8 gives the brute-force float8 rounding of the conv's output (${k.isa})`, () => {
    // A 1×1 conv with weight 1 and bias 0 passes its input through (x·1 + 0 is x, −0 becomes +0),
    // so the epilogue sees every test value; dense and depthwise kernels, after a HardSwish too.
    for (const fmt of ["fp8_e4m3fn", "fp8_e5m2"] as const) {
      const x = inputs(fmt);
      const n = x.length;
      const s = Math.fround(0.37);
      const shape: [number, number, number, number] = [1, 1, 1, n];
      const one = new Float32Array([1]);
      for (const depthwise of [false, true]) {
        const run = depthwise ? depthwiseConv2dF32 : conv2dF32;
        const y = run(x, shape, one, [1, 1, 1, 1], {
          kernels: k,
          bias: new Float32Array(1),
          post: { qdqFp8: { scale: s, format: fmt } },
        }).data;
        const hs = run(x, shape, one, [1, 1, 1, 1], {
          kernels: k,
          post: { hardswish: true, qdqFp8: { scale: s, format: fmt } },
        }).data;
        const hsPlain = run(x, shape, one, [1, 1, 1, 1], { kernels: k, post: { hardswish: true } })
          .data;
        for (let i = 0; i < n; i++) {
          const want = refQdq(x[i] + 0, s, fmt);
          const same = Object.is(y[i], want) || (Number.isNaN(y[i]) && Number.isNaN(want));
          if (!same) assert.fail(`${fmt} dw ${depthwise}: x=${x[i]} → ${y[i]}, reference ${want}`);
          const w2 = refQdq(hsPlain[i], s, fmt);
          const same2 = Object.is(hs[i], w2) || (Number.isNaN(hs[i]) && Number.isNaN(w2));
          if (!same2) assert.fail(`${fmt} dw ${depthwise} hardswish: x=${x[i]} → ${hs[i]}, ${w2}`);
        }
      }
    }
  });
}

Deno.test("conv post-op qdqFp8 rejects a bad scale or format, or quantize with it", () => {
  const x = new Float32Array(4), w = new Float32Array([1]);
  const bad = [
    { qdqFp8: { scale: 0, format: "fp8_e4m3fn" as const } },
    { qdqFp8: { scale: 1, format: "fp4" as "fp8_e5m2" } },
    { qdqFp8: { scale: 1, format: "constructor" as "fp8_e5m2" } },
    { qdqFp8: { scale: 1, format: "fp8_e5m2" as const }, quantize: { scale: 1, lo: 0, hi: 1 } },
  ];
  for (const post of bad) {
    assert.throws(() => conv2dF32(x, [1, 1, 1, 4], w, [1, 1, 1, 1], { post }), LowbitError);
  }
});

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import {
  conv2dF32,
  type Conv2dF32Options,
  depthwiseConv2dF32,
  type FloatKernels,
  prepareConv2dF32,
  quantizeF32,
} from "./float.ts";
import { refConv2dF32, type RefConvGeometry, refPost } from "./reference_float.ts";
import { floatContexts, randF32, rng } from "./_test_util.ts";

const CTX: FloatKernels[] = floatContexts();

interface Case {
  input: [number, number, number, number];
  weight: [number, number, number, number];
  group: number;
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
}

const CASES: Case[] = [
  // plain, 1×1 (the direct im2col copy), odd sizes
  {
    input: [1, 3, 7, 9],
    weight: [5, 3, 3, 3],
    group: 1,
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
  },
  {
    input: [2, 16, 5, 13],
    weight: [17, 16, 1, 1],
    group: 1,
    strides: [1, 1],
    pads: [0, 0, 0, 0],
    dilations: [1, 1],
  },
  {
    input: [1, 8, 11, 11],
    weight: [8, 8, 1, 1],
    group: 1,
    strides: [2, 2],
    pads: [0, 0, 0, 0],
    dilations: [1, 1],
  },
  // stride 2, asymmetric pads, rectangular kernel, dilation
  {
    input: [1, 4, 10, 15],
    weight: [6, 4, 3, 2],
    group: 1,
    strides: [2, 3],
    pads: [0, 1, 2, 1],
    dilations: [1, 1],
  },
  {
    input: [1, 5, 12, 12],
    weight: [3, 5, 3, 3],
    group: 1,
    strides: [1, 1],
    pads: [2, 2, 2, 2],
    dilations: [2, 2],
  },
  // stride 2 with rows wide enough for the vector im2col path (and its right-border fallback)
  {
    input: [1, 3, 9, 40],
    weight: [4, 3, 3, 3],
    group: 1,
    strides: [2, 2],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
  },
  {
    input: [1, 3, 32, 49],
    weight: [8, 3, 3, 3],
    group: 1,
    strides: [2, 2],
    pads: [1, 1, 1, 1],
    dilations: [1, 2],
  },
  // groups
  {
    input: [1, 8, 9, 9],
    weight: [12, 2, 3, 3],
    group: 4,
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
  },
  {
    input: [2, 6, 8, 7],
    weight: [6, 3, 5, 5],
    group: 2,
    strides: [2, 1],
    pads: [2, 2, 2, 2],
    dilations: [1, 1],
  },
  // 1×1 with bottom / right padding only: output pixel p is not input pixel p
  {
    input: [1, 3, 4, 19],
    weight: [2, 3, 1, 1],
    group: 1,
    strides: [1, 1],
    pads: [0, 0, 1, 1],
    dilations: [1, 1],
  },
  {
    input: [1, 3, 5, 16],
    weight: [4, 3, 1, 1],
    group: 1,
    strides: [1, 1],
    pads: [0, 0, 2, 0],
    dilations: [1, 1],
  },
  // depthwise (direct kernel): 3×3 / 5×5, strides 1, 2, 3, dilation, odd widths, pads; rows of
  // 16-output blocks then tails of 1 to 4 vectors (ow 17, 23, 28, 30, 45, 14 at stride 3)
  {
    input: [1, 3, 5, 45],
    weight: [3, 1, 5, 5],
    group: 3,
    strides: [1, 1],
    pads: [2, 2, 2, 2],
    dilations: [1, 1],
  },
  {
    input: [1, 2, 7, 28],
    weight: [2, 1, 3, 3],
    group: 2,
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
  },
  {
    input: [1, 7, 13, 17],
    weight: [7, 1, 3, 3],
    group: 7,
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
  },
  {
    input: [2, 5, 16, 16],
    weight: [5, 1, 3, 3],
    group: 5,
    strides: [2, 2],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
  },
  {
    input: [1, 4, 19, 23],
    weight: [4, 1, 5, 5],
    group: 4,
    strides: [1, 1],
    pads: [2, 2, 2, 2],
    dilations: [1, 1],
  },
  {
    input: [1, 3, 15, 21],
    weight: [3, 1, 5, 5],
    group: 3,
    strides: [2, 2],
    pads: [2, 1, 2, 3],
    dilations: [1, 1],
  },
  {
    input: [1, 3, 14, 14],
    weight: [3, 1, 3, 3],
    group: 3,
    strides: [3, 3],
    pads: [0, 0, 1, 1],
    dilations: [1, 1],
  },
  {
    input: [1, 2, 12, 12],
    weight: [2, 1, 3, 3],
    group: 2,
    strides: [1, 2],
    pads: [2, 2, 2, 2],
    dilations: [2, 2],
  },
  {
    input: [1, 3, 1, 1],
    weight: [3, 1, 3, 3],
    group: 3,
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
  },
  {
    input: [1, 2, 6, 5],
    weight: [2, 1, 2, 3],
    group: 2,
    strides: [1, 1],
    pads: [0, 0, 0, 0],
    dilations: [1, 1],
  },
  {
    input: [1, 3, 10, 30],
    weight: [3, 1, 3, 3],
    group: 3,
    strides: [1, 1],
    pads: [2, 2, 2, 2],
    dilations: [2, 2],
  },
  {
    input: [1, 2, 9, 40],
    weight: [2, 1, 3, 3],
    group: 2,
    strides: [3, 3],
    pads: [1, 0, 1, 2],
    dilations: [1, 1],
  },
  // depthwise with channel multiplier 2 (general path)
  {
    input: [1, 3, 8, 8],
    weight: [6, 1, 3, 3],
    group: 3,
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
  },
  // wide enough for several im2col chunks (K = 64·9)
  {
    input: [1, 64, 20, 20],
    weight: [16, 64, 3, 3],
    group: 1,
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
  },
];

function describe(c: Case): string {
  return `in [${c.input}] w [${c.weight}] g ${c.group} s [${c.strides}] p [${c.pads}] d [${c.dilations}]`;
}

function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i]))) continue;
    assert.fail(`${what}: output[${i}] = ${got[i]}, reference ${want[i]}`);
  }
}

for (const k of CTX) {
  Deno.test(`conv2dF32() equals the reference bit for bit: groups, strides, dilations, pads (${k.isa}, ${k.madd})`, () => {
    const r = rng(11);
    let t = 0;
    for (const c of CASES) {
      const x = randF32(c.input.reduce((p, v) => p * v), r);
      const w = randF32(c.weight.reduce((p, v) => p * v), r);
      const bias = t % 2 ? randF32(c.weight[0], r) : undefined;
      const act = t % 3 === 0
        ? "relu" as const
        : t % 3 === 1
        ? { min: -0.5, max: 0.75 }
        : undefined;
      t++;
      const opts: Conv2dF32Options = {
        group: c.group,
        strides: c.strides,
        pads: c.pads,
        dilations: c.dilations,
        bias,
        activation: act,
        kernels: k,
      };
      const got = conv2dF32(x, c.input, w, c.weight, opts);
      const g: RefConvGeometry = c;
      const lo = act === "relu" ? 0 : act?.min, hi = act && act !== "relu" ? act.max : undefined;
      const want = refConv2dF32(x, w, g, k.madd, { bias, lo, hi });
      assertSameBits(got.data, want, `${describe(c)} (${k.isa})`);
      // the float64 7-loop conv agrees within K·eps·Σ|terms|
      if (!act) {
        const exact = refConv2dF32(x, w, g, "exact", { bias });
        const kk = c.weight[1] * c.weight[2] * c.weight[3];
        for (let i = 0; i < exact.length; i++) {
          assert.ok(
            Math.abs(got.data[i] - exact[i]) <= (kk + 2) * 2 ** -23 * (kk + 1),
            `${describe(c)}: output[${i}] ${got.data[i]} vs float64 ${exact[i]}`,
          );
        }
      }
    }
  });
}

for (const k of CTX) {
  Deno.test(`conv2dF32() with per-channel scale and post-ops equals the reference bit for bit (${k.isa}, ${k.madd})`, () => {
    const r = rng(31);
    const posts = [
      { preMul: 1.5, preAdd: -0.25, hardswish: true, mul: 0.5, add: 0.125 },
      { mul: 2, add: 1, quantize: { scale: 0.05, lo: -128, hi: 127 } },
      { preMul: 0.9, hardswish: true, quantize: { scale: 0.013, lo: -3, hi: 252 } },
      { quantize: { scale: 1 / 3, lo: -7, hi: 7 } },
      {
        hardswish: true,
        quantize: { scale: 0.021, lo: -20, hi: 235 },
        dequantize: { nanCode: 20 },
      },
    ];
    let t = 0;
    for (const c of CASES) {
      const x = randF32(c.input.reduce((p, v) => p * v), r);
      const w = randF32(c.weight.reduce((p, v) => p * v), r);
      const bias = t % 2 ? randF32(c.weight[0], r) : undefined;
      const scale = randF32(c.weight[0], r, 3);
      const post = posts[t++ % posts.length];
      const opts: Conv2dF32Options = {
        group: c.group,
        strides: c.strides,
        pads: c.pads,
        dilations: c.dilations,
        bias,
        scale,
        activation: { min: -2, max: 5 },
        post,
        kernels: k,
      };
      const got = conv2dF32(x, c.input, w, c.weight, opts);
      const want = refConv2dF32(x, w, c, k.madd, { scale, bias, lo: -2, hi: 5, post });
      assertSameBits(got.data, want, `${describe(c)} ${JSON.stringify(post)} (${k.isa})`);
      if (post.quantize && !post.dequantize) {
        const { lo, hi } = post.quantize;
        assert.ok(got.data.every((v) => Number.isInteger(v) && v >= lo && v <= hi));
      }
    }
    // The integer plan's epilogues (a bias, no clamp: the kernels' straight-through modes),
    // with and without a scale.
    const lcnet = [
      { preMul: 1.5, preAdd: -0.25, hardswish: true, mul: 0.5, add: 0.125, quantize: q8 },
      { preMul: 0.7, preAdd: 0.1, quantize: q8 },
      { quantize: q8 },
    ];
    t = 0;
    for (const c of CASES) {
      const x = randF32(c.input.reduce((p, v) => p * v), r);
      const w = randF32(c.weight.reduce((p, v) => p * v), r);
      const bias = randF32(c.weight[0], r);
      const scale = t % 2 ? randF32(c.weight[0], r, 3) : undefined;
      const post = lcnet[t++ % lcnet.length];
      const opts: Conv2dF32Options = {
        group: c.group,
        strides: c.strides,
        pads: c.pads,
        dilations: c.dilations,
        bias,
        scale,
        post,
        kernels: k,
      };
      const got = conv2dF32(x, c.input, w, c.weight, opts);
      const want = refConv2dF32(x, w, c, k.madd, { scale, bias, post });
      assertSameBits(got.data, want, `${describe(c)} ${JSON.stringify(post)} (${k.isa}, no clamp)`);
      // A ReLU, then an int8 Q → DQ pair (also straight through).
      const qdq = { quantize: q8, dequantize: { nanCode: 7 } };
      const got2 = conv2dF32(x, c.input, w, c.weight, { ...opts, activation: "relu", post: qdq });
      const want2 = refConv2dF32(x, w, c, k.madd, { scale, bias, lo: 0, post: qdq });
      assertSameBits(got2.data, want2, `${describe(c)} relu + Q → DQ (${k.isa})`);
      // A clamp, then the next layer's quantization (straight through too).
      const clampQ = { activation: { min: -1, max: 2 }, post: { quantize: q8 } };
      const got3 = conv2dF32(x, c.input, w, c.weight, { ...opts, ...clampQ });
      const want3 = refConv2dF32(x, w, c, k.madd, {
        scale,
        bias,
        lo: -1,
        hi: 2,
        post: clampQ.post,
      });
      assertSameBits(got3.data, want3, `${describe(c)} clamp + Q (${k.isa})`);
    }
  });
}
const q8 = { scale: 0.03, lo: -120, hi: 135 };

Deno.test("clamp + quantize epilogue: exact ties and quotients within ulps of a tie round as f32(v / s)", () => {
  // Bias, clamp, quantize (the straight-through epilogue mode): values f32((k + 1/2)·s) and
  // their f32 neighbours (±1, ±2, ±3 ulps), where a quotient not rounded exactly as f32(v / s)
  // (e.g. v times f32(1 / s)) rounds to the other integer, against refPost's nearest(f32(v / s)).
  const near: number[] = [];
  const ulpStep = (v: number, k: number): number => {
    const b = new Float32Array([v]), u = new Int32Array(b.buffer);
    u[0] += v >= 0 ? k : -k;
    return b[0];
  };
  for (const s of [0.1, 0.03, 1 / 3, 0.0078125, 0.7, 13.7]) {
    for (let k = -300; k <= 300; k += 7) {
      const t = Math.fround((k + 0.5) * Math.fround(s));
      for (let d = -3; d <= 3; d++) near.push(ulpStep(t, d));
    }
  }
  near.push(NaN, Infinity, -Infinity, 3e38, -0);
  const n = near.length;
  const x = Float32Array.from(near);
  for (const k of CTX) {
    for (const s of [0.1, 0.03, 1 / 3, 0.0078125, 0.7, 13.7]) {
      const quantize = { scale: s, lo: -400, hi: 400 };
      for (const scale of [undefined, new Float32Array([1])]) {
        const y = conv2dF32(x, [1, 1, 1, n], new Float32Array([1]), [1, 1, 1, 1], {
          bias: new Float32Array([0]),
          scale,
          activation: { min: -3e38, max: 3e38 },
          post: { quantize },
          kernels: k,
        });
        // v·1 + 0 (−0 becomes +0), the clamp (NaN stays NaN), then QuantizeLinear
        const lo = Math.fround(-3e38), hi = Math.fround(3e38);
        const want = x.map((v) => refPost(Math.min(Math.max(v + 0, lo), hi), { quantize }));
        assertSameBits(y.data, want, `s ${s}, ${scale ? "scale" : "no scale"} (${k.isa})`);
      }
    }
  }
});

Deno.test("conv post-op quantize rounds half to even and keeps NaN, as QuantizeLinear", () => {
  // Hand-derived: 1×1 conv with weight 1, scale 0.5: 0.25 → 0.5 → 0, 0.75 → 1.5 → 2,
  // 1.25 → 2.5 → 2, −0.25 → −0.5 → −0 → +0, 100 → 200 → clamped 9, NaN → NaN.
  const x = new Float32Array([0.25, 0.75, 1.25, -0.25, 100, NaN, -100, 0.5]);
  for (const k of CTX) {
    const y = conv2dF32(x, [1, 1, 2, 4], new Float32Array([1]), [1, 1, 1, 1], {
      post: { quantize: { scale: 0.5, lo: -10, hi: 9 } },
      kernels: k,
    });
    assertSameBits(y.data, new Float32Array([0, 2, 2, 0, 9, NaN, -10, 1]), k.isa);
    assert.ok(Object.is(y.data[3], 0), "−0 becomes +0");
    // With dequantize (QuantizeLinear → DequantizeLinear): the codes × 0.5, NaN → code 3 × 0.5.
    const d = conv2dF32(x, [1, 1, 2, 4], new Float32Array([1]), [1, 1, 1, 1], {
      post: { quantize: { scale: 0.5, lo: -10, hi: 9 }, dequantize: { nanCode: 3 } },
      kernels: k,
    });
    assertSameBits(
      d.data,
      new Float32Array([0, 1, 1, 0, 4.5, 1.5, -5, 0.5]),
      `${k.isa} dequantize`,
    );
    assert.ok(Object.is(d.data[3], 0), "−0 becomes +0 (dequantize)");
  }
  for (const dq of [{ nanCode: 0.5 }, { nanCode: 600 }]) {
    assert.throws(
      () =>
        conv2dF32(x, [1, 1, 2, 4], new Float32Array([1]), [1, 1, 1, 1], {
          post: { quantize: { scale: 1, lo: 0, hi: 1 }, dequantize: dq },
        }),
      (e: unknown) => e instanceof LowbitError && /dequantize/.test(e.message),
    );
  }
  assert.throws(
    () =>
      conv2dF32(x, [1, 1, 2, 4], new Float32Array([1]), [1, 1, 1, 1], {
        post: { dequantize: { nanCode: 0 } },
      }),
    (e: unknown) => e instanceof LowbitError && /dequantize needs quantize/.test(e.message),
  );
  for (
    const q of [{ scale: 0, lo: 0, hi: 1 }, { scale: 1, lo: 2, hi: 1 }, {
      scale: 1,
      lo: 0.5,
      hi: 1,
    }]
  ) {
    assert.throws(
      () =>
        conv2dF32(x, [1, 1, 2, 4], new Float32Array([1]), [1, 1, 1, 1], { post: { quantize: q } }),
      (e: unknown) => e instanceof LowbitError && /quantize/.test(e.message),
    );
  }
  assert.throws(
    () =>
      conv2dF32(x, [1, 1, 2, 4], new Float32Array([1]), [1, 1, 1, 1], {
        scale: new Float32Array(2),
      }),
    (e: unknown) => e instanceof LowbitError && /scale/.test(e.message),
  );
});

Deno.test("depthwiseConv2dF32() and conv2dF32() give the same bits on depthwise shapes", () => {
  const r = rng(12);
  for (const k of CTX) {
    const x = randF32(2 * 6 * 17 * 19, r), w = randF32(6 * 9, r), bias = randF32(6, r);
    const opts: Conv2dF32Options = {
      strides: [2, 2],
      pads: [1, 1, 1, 1],
      bias,
      activation: { min: 0, max: 6 },
      kernels: k,
    };
    const d = depthwiseConv2dF32(x, [2, 6, 17, 19], w, [6, 1, 3, 3], opts);
    const g = conv2dF32(x, [2, 6, 17, 19], w, [6, 1, 3, 3], { ...opts, group: 6 });
    assert.deepEqual(d.shape, [2, 6, 9, 10]);
    assertSameBits(d.data, g.data, `depthwise vs conv (${k.isa})`);
  }
});

Deno.test("conv2dF32() accepts prepared weights and an output buffer", () => {
  const r = rng(13);
  const k = CTX[CTX.length - 1];
  const x = randF32(1 * 4 * 6 * 6, r), w = randF32(8 * 4 * 3 * 3, r);
  const pw = prepareConv2dF32(w, [8, 4, 3, 3], k);
  const out = new Float32Array(8 * 6 * 6);
  const y = conv2dF32(x, [1, 4, 6, 6], pw, { pads: [1, 1, 1, 1], out });
  assert.equal(y.data, out);
  assertSameBits(
    out,
    conv2dF32(x, [1, 4, 6, 6], w, [8, 4, 3, 3], { pads: [1, 1, 1, 1], kernels: k }).data,
    "prepared",
  );
  pw.dispose();
  assert.throws(() => conv2dF32(x, [1, 4, 6, 6], pw), /disposed/);
});

Deno.test("conv2dF32() rejects bad shapes and attributes with clear errors", () => {
  const k = CTX[0];
  const err = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof LowbitError && re.test(e.message), String(re));
  const x = new Float32Array(1 * 4 * 5 * 5);
  err(
    () => conv2dF32(x, [1, 4, 5, 4], new Float32Array(36), [1, 4, 3, 3], { kernels: k }),
    /input \[1,4,5,4\] has 100 elements, expected 80/,
  );
  err(
    () => conv2dF32(x, [1, 4, 5, 5], new Float32Array(35), [1, 4, 3, 3], { kernels: k }),
    /weight \[1,4,3,3\] has 35/,
  );
  err(
    () => conv2dF32(x, [1, 4, 5, 5], new Float32Array(36), [2, 2, 3, 3], { group: 3, kernels: k }),
    /groups/,
  );
  err(
    () =>
      conv2dF32(x, [1, 4, 5, 5], new Float32Array(36), [1, 4, 3, 3], {
        strides: [0, 1],
        kernels: k,
      }),
    /stride/,
  );
  err(
    () =>
      conv2dF32(x, [1, 4, 5, 5], new Float32Array(36), [1, 4, 3, 3], {
        pads: [-1, 0, 0, 0],
        kernels: k,
      }),
    /pads/,
  );
  err(
    () => conv2dF32(x, [1, 4, 5, 5], new Float32Array(4 * 49), [1, 4, 7, 7], { kernels: k }),
    /does not fit/,
  );
  err(
    () =>
      conv2dF32(x, [1, 4, 5, 5], new Float32Array(36), [1, 4, 3, 3], {
        bias: new Float32Array(2),
        kernels: k,
      }),
    /bias/,
  );
  err(
    () => depthwiseConv2dF32(x, [1, 4, 5, 5], new Float32Array(72), [8, 1, 3, 3], { kernels: k }),
    /depthwise needs/,
  );
  err(
    () =>
      conv2dF32(x, [1, 4, 5] as unknown as [number, number, number, number], new Float32Array(36), [
        1,
        4,
        3,
        3,
      ]),
    /4 dimensions/,
  );
});

Deno.test("quantizeF32() equals QuantizeLinear's scalar definition (refPost) bit for bit", () => {
  const r = rng(41);
  for (const k of CTX) {
    for (const n of [1, 3, 4, 17, 1000]) {
      const x = randF32(n, r, 4);
      if (n > 3) x.set([0.25, -0.25, NaN, 1e30]);
      for (const [s, lo, hi] of [[0.05, -128, 127], [0.013, -3, 252], [1 / 3, -7, 7]]) {
        const want = x.map((v) => refPost(v, { quantize: { scale: s, lo, hi } }));
        assertSameBits(quantizeF32(x, s, lo, hi, { kernels: k }), want, `n ${n} s ${s} (${k.isa})`);
        // dequantize: f32(c·s), NaN → the given centred code (here −lo − 1: any integer works)
        const nanCode = -lo - 1;
        const dq = want.map((c) => Math.fround((Number.isNaN(c) ? nanCode : c) * Math.fround(s)));
        const got = quantizeF32(x, s, lo, hi, { kernels: k, dequantize: { nanCode } });
        assertSameBits(got, dq, `dequantize n ${n} s ${s} (${k.isa})`);
        // In place (out = x), with and without dequantize: the same values.
        const xi = x.slice(), xd = x.slice();
        assertSameBits(quantizeF32(xi, s, lo, hi, { kernels: k, out: xi }), want, "in place");
        const d2 = quantizeF32(xd, s, lo, hi, { kernels: k, out: xd, dequantize: { nanCode } });
        assert.ok(d2 === xd);
        assertSameBits(xd, dq, `dequantize in place n ${n} (${k.isa})`);
      }
    }
  }
  assert.throws(() => quantizeF32(new Float32Array(2), 0, 0, 1), /quantize/);
});

Deno.test("conv2dF32() inputQuantize equals the conv of quantizeF32()'s codes and leaves the input", () => {
  const r = rng(43);
  for (const k of CTX) {
    for (const c of CASES) {
      const x = randF32(c.input.reduce((p, v) => p * v), r, 3);
      const keep = x.slice();
      const w = randF32(c.weight.reduce((p, v) => p * v), r);
      const opts: Conv2dF32Options = {
        group: c.group,
        strides: c.strides,
        pads: c.pads,
        dilations: c.dilations,
        kernels: k,
      };
      const q = { scale: 0.02, lo: -100, hi: 155 };
      const got = conv2dF32(x, c.input, w, c.weight, { ...opts, inputQuantize: q });
      const want = conv2dF32(
        quantizeF32(x, q.scale, q.lo, q.hi, { kernels: k }),
        c.input,
        w,
        c.weight,
        opts,
      );
      assertSameBits(got.data, want.data, `${describe(c)} (${k.isa})`);
      assertSameBits(x, keep, "input untouched");
    }
  }
});

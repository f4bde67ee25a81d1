import assert from "node:assert/strict";
import {
  decodeCodes,
  dequantizeAffine,
  fakeQuantize,
  type Granularity,
  LowbitError,
  type QParams,
  quantizeAffine,
  tensor,
} from "@lowbit/core";

interface Case {
  format: string;
  shape: number[];
  axis: number | null;
  scale: number[];
  zeroPoint: number[];
  x: number[];
  fake: number[];
  codes?: number[];
  quantMin?: number;
  quantMax?: number;
}

const golden = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/torch_fake_quant.json", import.meta.url)),
) as { cases: Case[] };

function qpOf(c: Case): QParams {
  const granularity: Granularity = c.axis === null
    ? { kind: "tensor" }
    : { kind: "channel", axis: c.axis };
  return {
    format: c.format,
    granularity,
    mode: "affine",
    scale: Float32Array.from(c.scale),
    zeroPoint: Int32Array.from(c.zeroPoint),
    quantMin: c.quantMin,
    quantMax: c.quantMax,
  };
}

function scaleIndex(c: Case, i: number): number {
  if (c.axis === null) return 0;
  const axis = c.axis < 0 ? c.axis + c.shape.length : c.axis;
  let inner = 1;
  for (let d = axis + 1; d < c.shape.length; d++) inner *= c.shape[d];
  return Math.floor(i / inner) % c.shape[axis];
}

Deno.test("fakeQuantize() equals torch fake_quantize_per_{tensor,channel}_affine bit for bit", () => {
  let ties = 0, clamped = 0;
  for (const c of golden.cases) {
    const t = tensor(Float32Array.from(c.x), c.shape);
    const got = fakeQuantize(t, qpOf(c)).data;
    const want = Float32Array.from(c.fake);
    for (let i = 0; i < want.length; i++) {
      if (!Object.is(got[i], want[i])) {
        assert.fail(
          `${c.format} shape [${c.shape}] axis ${c.axis}: element ${i} x=${c.x[i]} ` +
            `got ${got[i]}, torch ${want[i]}`,
        );
      }
      const k = scaleIndex(c, i);
      const y = Math.fround(c.x[i] * Math.fround(1 / c.scale[k]));
      if (Math.abs(y - Math.trunc(y)) === 0.5) ties++;
      if (Math.abs(c.x[i]) === 1e4) clamped++;
    }
  }
  assert.ok(ties > 500, `goldens hold only ${ties} exact ties`);
  assert.ok(clamped > 50);
  assert.equal(golden.cases.filter((c) => c.quantMin === -127).length, 2);
});

Deno.test("quantizeAffine() codes equal torch quantize_per_channel int_repr", () => {
  let n = 0;
  for (const c of golden.cases) {
    if (!c.codes) continue;
    const qp = qpOf(c);
    const codes = quantizeAffine(tensor(Float32Array.from(c.x), c.shape), qp);
    assert.deepEqual([...decodeCodes(codes, c.format)], c.codes);
    // and dequantize(quantize(x)) is the fake-quantized value
    const deq = dequantizeAffine(codes, qp, c.shape).data;
    assert.deepEqual([...deq], [...Float32Array.from(c.fake)]);
    n++;
  }
  assert.ok(n >= 12);
});

Deno.test("quantizeAffine() rounds half to even", () => {
  const qp: QParams = {
    format: "int8",
    granularity: { kind: "tensor" },
    mode: "symmetric",
    scale: Float32Array.of(1),
    zeroPoint: Int32Array.of(0),
  };
  const x = Float32Array.of(0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, -128.5);
  const q = decodeCodes(quantizeAffine(tensor(x, [x.length]), qp), "int8");
  assert.deepEqual([...q], [0, 2, 2, 0, -2, -2, 126, 127, -128]);
});

Deno.test("quantizeAffine() uses the format's grid for minifloats", () => {
  const qp: QParams = {
    format: "fp4_e2m1fn",
    granularity: { kind: "tensor" },
    mode: "symmetric",
    scale: Float32Array.of(0.5),
    zeroPoint: Int32Array.of(0),
  };
  // x / 0.5 = 1.25 (tie between 1 and 1.5 → even mantissa 1), 5 (tie 4|6 → 4), 100 → 6
  const t = tensor(Float32Array.of(0.625, 2.5, 50, -50), [4]);
  const fq = fakeQuantize(t, qp).data;
  assert.deepEqual([...fq], [0.5, 2, 3, -3]);
  const deq = dequantizeAffine(quantizeAffine(t, qp), qp, [4]).data;
  assert.deepEqual([...deq], [...fq]);
});

Deno.test("fakeQuantize() applies block formats over the last axis", () => {
  const x = new Float32Array(64);
  for (let i = 0; i < 64; i++) x[i] = (i % 7) - 3 + i / 100;
  const qp: QParams = {
    format: "mxfp4",
    granularity: { kind: "tensor" },
    mode: "symmetric",
    scale: Float32Array.of(1),
    zeroPoint: Int32Array.of(0),
  };
  const got = fakeQuantize(tensor(x, [2, 32]), qp).data;
  assert.equal(got.length, 64);
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(got[i] - x[i]) <= 1, `element ${i}`);
  assert.throws(
    () => fakeQuantize(tensor(new Float32Array(48), [3, 16]), qp),
    (e: unknown) => e instanceof LowbitError && /multiple of 32/.test(e.message),
  );
  assert.throws(
    () => quantizeAffine(tensor(x, [2, 32]), qp),
    (e: unknown) => e instanceof LowbitError && e.code === "UNSUPPORTED",
  );
});

Deno.test("quantizeAffine() rejects NaN and Inf naming the index and tensor", () => {
  const qp: QParams = {
    format: "int8",
    granularity: { kind: "tensor" },
    mode: "symmetric",
    scale: Float32Array.of(1),
    zeroPoint: Int32Array.of(0),
  };
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.throws(
      () => quantizeAffine(tensor(Float32Array.of(1, bad), [2]), qp, "fc.weight"),
      (e: unknown) =>
        e instanceof LowbitError && e.code === "INVALID_TENSOR" &&
        e.message.startsWith("tensor 'fc.weight': contains") && /index 1/.test(e.message),
    );
    assert.throws(() => fakeQuantize(tensor(Float32Array.of(bad), [1]), qp), LowbitError);
  }
});

Deno.test("quantizeAffine() gives empty codes for an empty tensor", () => {
  const qp: QParams = {
    format: "int8",
    granularity: { kind: "channel", axis: 1 },
    mode: "symmetric",
    scale: Float32Array.of(1, 1),
    zeroPoint: Int32Array.of(0, 0),
  };
  assert.equal(quantizeAffine(tensor(new Float32Array(0), [0, 2]), qp).length, 0);
  assert.equal(fakeQuantize(tensor(new Float32Array(0), [0, 2]), qp).data.length, 0);
});

Deno.test("quantizeAffine() checks parameters against the shape", () => {
  const base: QParams = {
    format: "int8",
    granularity: { kind: "channel", axis: 0 },
    mode: "symmetric",
    scale: Float32Array.of(1, 1),
    zeroPoint: Int32Array.of(0, 0),
  };
  const t = tensor(new Float32Array(6), [3, 2]);
  assert.throws(
    () => quantizeAffine(t, base),
    (e: unknown) =>
      e instanceof LowbitError && e.code === "SHAPE_MISMATCH" && /needs 3/.test(e.message),
  );
  assert.throws(
    () => quantizeAffine(t, { ...base, granularity: { kind: "channel", axis: 2 } }),
    (e: unknown) => e instanceof LowbitError && /axis 2 is out of range/.test(e.message),
  );
  assert.throws(
    () => quantizeAffine(t, { ...base, granularity: { kind: "group", axis: 0, size: 2 } }),
    (e: unknown) =>
      e instanceof LowbitError && /group size 2 does not divide axis 0 of length 3/.test(e.message),
  );
  assert.throws(
    () =>
      quantizeAffine(tensor(new Float32Array(4), [2, 2]), {
        ...base,
        scale: Float32Array.of(1, 0),
      }),
    (e: unknown) => e instanceof LowbitError && /scale 1 is 0/.test(e.message),
  );
  assert.throws(
    () => quantizeAffine(tensor(new Float32Array(4), [2, 2]), { ...base, format: "int9x" }),
    (e: unknown) => e instanceof LowbitError && e.code === "UNKNOWN_NAME" && /int8/.test(e.message),
  );
});

Deno.test("fakeQuantize() handles negative axes and groups like positive ones", () => {
  const x = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i) * 3);
  const t = tensor(x, [2, 3, 4]);
  const mk = (g: Granularity, n: number): QParams => ({
    format: "int4",
    granularity: g,
    mode: "symmetric",
    scale: Float32Array.from({ length: n }, (_, k) => 0.1 + k / 50),
    zeroPoint: new Int32Array(n),
  });
  assert.deepEqual(
    fakeQuantize(t, mk({ kind: "channel", axis: -1 }, 4)).data,
    fakeQuantize(t, mk({ kind: "channel", axis: 2 }, 4)).data,
  );
  // per-group of 2 along axis 2: scale index = (i0 * 3 + i1) * 2 + floor(i2 / 2)
  const qp = mk({ kind: "group", axis: 2, size: 2 }, 12);
  const got = fakeQuantize(t, qp).data;
  for (let i = 0; i < 24; i++) {
    const k = Math.floor(i / 4) * 2 + Math.floor((i % 4) / 2);
    const s = qp.scale[k];
    const y = Math.fround(x[i] * Math.fround(1 / s));
    assert.notEqual(Math.abs(y % 1), 0.5); // no ties here: Math.round is fine
    const q = Math.min(7, Math.max(-8, Math.round(y))) + 0; // + 0: torch gives +0, not -0
    assert.equal(got[i], Math.fround(q * s) + 0, `element ${i}`);
  }
});

import assert from "node:assert/strict";
import {
  chooseQParams,
  fakeQuantize,
  fitQParams,
  type Granularity,
  LowbitError,
  type QuantMode,
  rangeOf,
  tensor,
} from "@lowbit/core";

interface QpCase {
  format: string;
  mode: QuantMode;
  shape: number[];
  axis: number | null;
  x: number[];
  scale: number[];
  zeroPoint: number[];
  quantMin?: number;
  quantMax?: number;
}

const golden = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/torch_fake_quant.json", import.meta.url)),
) as { qparams: QpCase[] };

const isErr = (code: string, re: RegExp) => (e: unknown): boolean =>
  e instanceof LowbitError && e.code === code && re.test(e.message);

Deno.test("fitQParams() equals torch MinMaxObserver / PerChannelMinMaxObserver", () => {
  for (const c of golden.qparams) {
    const granularity: Granularity = c.axis === null
      ? { kind: "tensor" }
      : { kind: "channel", axis: c.axis };
    const qp = fitQParams(tensor(Float32Array.from(c.x), c.shape), {
      format: c.format,
      granularity,
      mode: c.mode,
      quantMin: c.quantMin,
      quantMax: c.quantMax,
    });
    const where = `${c.format} ${c.mode} shape [${c.shape}] axis ${c.axis}`;
    assert.deepEqual([...qp.scale], [...Float32Array.from(c.scale)], where);
    assert.deepEqual([...qp.zeroPoint], c.zeroPoint, where);
  }
});

Deno.test("chooseQParams() gives a zero range the float32 epsilon scale", () => {
  const zero = { min: Float32Array.of(0), max: Float32Array.of(0) };
  for (const mode of ["symmetric", "affine"] as const) {
    const qp = chooseQParams(zero, { format: "int8", granularity: { kind: "tensor" }, mode });
    assert.equal(qp.scale[0], 2 ** -23);
    const fq = fakeQuantize(tensor(new Float32Array(4), [4]), qp).data;
    assert.deepEqual([...fq], [0, 0, 0, 0]); // zero stays exact
  }
  // a constant non-zero tensor is represented (almost) exactly
  const c = tensor(new Float32Array(5).fill(0.75), [5]);
  for (const mode of ["symmetric", "affine"] as const) {
    const qp = fitQParams(c, { format: "uint8", granularity: { kind: "tensor" }, mode });
    const fq = fakeQuantize(c, qp).data;
    assert.ok(Math.abs(fq[0] - 0.75) <= qp.scale[0], `${mode}: ${fq[0]}`);
  }
  const fp = chooseQParams(zero, { format: "fp8_e4m3fn", granularity: { kind: "tensor" } });
  assert.equal(fp.scale[0], 2 ** -23);
});

Deno.test("chooseQParams() maps amax to the format's max for minifloats", () => {
  const r = { min: Float32Array.of(-3, 0), max: Float32Array.of(1, 896) };
  const qp = chooseQParams(r, { format: "fp8_e4m3fn", granularity: { kind: "channel", axis: 0 } });
  assert.deepEqual([...qp.scale], [Math.fround(3 / 448), 2]);
  assert.deepEqual([...qp.zeroPoint], [0, 0]);
  const mx = chooseQParams(r, { format: "mxfp4", granularity: { kind: "channel", axis: 0 } });
  assert.deepEqual([...mx.scale], [1, 1]);
});

Deno.test("chooseQParams() rounds scales up to powers of two", () => {
  const r = { min: Float32Array.of(-1, -0.3, 0), max: Float32Array.of(1, 2, 1.6) };
  const sym = chooseQParams(r, {
    format: "int8",
    granularity: { kind: "channel", axis: 0 },
    powerOfTwo: true,
  });
  assert.deepEqual([...sym.scale], [2 ** -6, 2 ** -5, 2 ** -6]); // 2 / 127.5 > 2^-6
  const aff = chooseQParams(r, {
    format: "uint8",
    granularity: { kind: "channel", axis: 0 },
    mode: "affine",
    powerOfTwo: true,
  });
  assert.deepEqual([...aff.scale], [2 ** -6, 2 ** -6, 2 ** -7]); // 2 / 255 > 2^-7
  // zero points refitted to the rounded scale: 0 - round(-1 / 2^-6), 0 - round(-19.2)
  assert.deepEqual([...aff.zeroPoint], [64, 19, 0]);
  const exact = chooseQParams({ min: Float32Array.of(-127.5), max: Float32Array.of(0) }, {
    format: "int8",
    granularity: { kind: "tensor" },
    powerOfTwo: true,
  });
  assert.equal(exact.scale[0], 1); // already a power of two: unchanged
});

Deno.test("rangeOf() groups along an axis in scale order", () => {
  const x = Float32Array.from({ length: 12 }, (_, i) => i - 6);
  const r = rangeOf(tensor(x, [2, 6]), { kind: "group", axis: 1, size: 3 });
  assert.deepEqual([...r.min], [-6, -3, 0, 3]);
  assert.deepEqual([...r.max], [-4, -1, 2, 5]);
  const r0 = rangeOf(tensor(x, [4, 3]), { kind: "group", axis: 0, size: 2 });
  // groups along axis 0: scale index = floor(i0 / 2) * 3 + i1
  assert.deepEqual([...r0.min], [-6, -5, -4, 0, 1, 2]);
  assert.deepEqual([...r0.max], [-3, -2, -1, 3, 4, 5]);
});

Deno.test("fitQParams() reports bad input clearly", () => {
  const opts = { format: "int8", granularity: { kind: "tensor" } as const, name: "w" };
  assert.throws(
    () => fitQParams(tensor(new Float32Array(0), [0, 4]), opts),
    isErr("INVALID_TENSOR", /^tensor 'w': is empty \(shape \[0,4\]\)/),
  );
  assert.throws(
    () => fitQParams(tensor(Float32Array.of(1, NaN), [2]), opts),
    isErr("INVALID_TENSOR", /^tensor 'w': contains NaN at flat index 1/),
  );
  assert.throws(
    () => fitQParams(tensor(Float32Array.of(Infinity), [1]), opts),
    isErr("INVALID_TENSOR", /contains Infinity/),
  );
  assert.throws(
    () =>
      fitQParams(tensor(new Float32Array(10), [2, 5]), {
        ...opts,
        granularity: { kind: "group", axis: 1, size: 4 },
      }),
    isErr("INVALID_ARGUMENT", /group size 4 does not divide axis 1 of length 5 \(shape \[2,5\]\)/),
  );
  assert.throws(
    () =>
      fitQParams(tensor(new Float32Array(10), [2, 5]), {
        ...opts,
        granularity: { kind: "channel", axis: -3 },
      }),
    isErr("INVALID_ARGUMENT", /axis -3 is out of range for a tensor of rank 2 \(valid: -2\.\.1\)/),
  );
  assert.throws(
    () => fitQParams(tensor(Float32Array.of(1), [1]), { ...opts, format: "nosuchformat" }),
    isErr("UNKNOWN_NAME", /unknown format 'nosuchformat'; registered: .*int8/),
  );
  assert.throws(
    () =>
      fitQParams(tensor(Float32Array.of(1), [1]), {
        ...opts,
        format: "fp8_e4m3fn",
        mode: "affine",
      }),
    isErr("UNSUPPORTED", /affine mode needs an integer format; 'fp8_e4m3fn' is float/),
  );
  assert.throws(
    () => chooseQParams({ min: Float32Array.of(2), max: Float32Array.of(1) }, opts),
    isErr("INVALID_ARGUMENT", /range entry 0 is \[2, 1\]/),
  );
});

Deno.test("chooseQParams() honours a narrower integer range (restricted int8)", () => {
  const r = { min: Float32Array.of(-2.54), max: Float32Array.of(1) };
  const qp = chooseQParams(r, {
    format: "int8",
    granularity: { kind: "tensor" },
    quantMin: -127,
    quantMax: 127,
  });
  assert.equal(qp.scale[0], Math.fround(2.54 / 127));
  assert.equal(qp.quantMin, -127);
  const fq = fakeQuantize(tensor(Float32Array.of(-100, 100), [2]), qp).data;
  assert.deepEqual([...fq], [-127, 127].map((q) => Math.fround(q * qp.scale[0])));
  assert.throws(
    () => chooseQParams(r, { format: "int8", granularity: { kind: "tensor" }, quantMin: -129 }),
    isErr("INVALID_ARGUMENT", /-128 <= quantMin < quantMax <= 127 for format 'int8'/),
  );
  assert.throws(
    () => chooseQParams(r, { format: "fp8_e4m3fn", granularity: { kind: "tensor" }, quantMax: 7 }),
    isErr("UNSUPPORTED", /quantMin \/ quantMax apply to integer formats/),
  );
});

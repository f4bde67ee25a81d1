import assert from "node:assert/strict";
import {
  type BlockFormat,
  createRng,
  defaultQuantizerFor,
  defaultRegistry,
  fakeQuantize,
  fitQParams,
  getFormat,
  LowbitError,
  rangeOf,
  tensor,
} from "@lowbit/core";

Deno.test("uniform quantizer fits, quantizes and dequantizes like the plain functions", () => {
  const rng = createRng(21);
  const w = tensor(Float32Array.from({ length: 8 * 16 }, () => rng.normal()), [8, 16]);
  const granularity = { kind: "group", axis: 1, size: 8 } as const;
  const q = defaultRegistry().quantizers.get("uniform");
  for (
    const [mode, format] of [["symmetric", "int4"], ["affine", "uint4"], [
      "symmetric",
      "fp8_e4m3fn",
    ]]
  ) {
    const m = mode as "symmetric" | "affine";
    const qp = q.fit(rangeOf(w, granularity), { format, granularity, mode: m });
    assert.deepEqual(qp, fitQParams(w, { format, granularity, mode: m }));
    assert.deepEqual(q.fit(w, { format, granularity, mode: m }), qp);
    const back = q.dequantize(q.quantize(w, qp), qp, w.shape);
    assert.deepEqual(back.data, fakeQuantize(w, qp).data, `${mode} ${format}`);
    assert.equal(q.onnx!(qp), true);
  }
  assert.equal(q.supports(getFormat("mxfp4")), false);
  assert.equal(q.onnx!(q.fit(w, { format: "int3", granularity, mode: "symmetric" })), false);
});

Deno.test("uniform fakeQuant() per tensor divides by the scale as QuantizeLinear does", () => {
  const q = defaultRegistry().quantizers.get("uniform");
  // 0.3 / 0.1 is 2.9999999999999996 in float64 but 3 in float32 division: QuantizeLinear gives 3.
  const qp = {
    format: "int8",
    granularity: { kind: "tensor" } as const,
    mode: "symmetric" as const,
    scale: Float32Array.of(0.1),
    zeroPoint: Int32Array.of(0),
  };
  const x = tensor(Float32Array.of(0.3, 0.25, -0.35, 100), [4]);
  // hand-derived: 0.3/0.1 → 3; 0.25/0.1 = 2.5 → 2 (ties to even); -3.5 → -4; 1000 → clamp 127
  const want = [3, 2, -4, 127].map((c) => Math.fround(c * Math.fround(0.1)));
  assert.deepEqual([...q.fakeQuant(x, qp).data], want);
});

Deno.test("uniform row granularity quantizes each row with its own dynamic scale", () => {
  const q = defaultRegistry().quantizers.get("uniform");
  const qp = q.fit({ min: Float32Array.of(0), max: Float32Array.of(1) }, {
    format: "int8",
    granularity: { kind: "row", axis: -1 },
    mode: "symmetric",
  });
  assert.equal(qp.dynamic, true);
  assert.equal(q.onnx!(qp), false);
  // rows [1, 2] and [100, -50] each get torch's symmetric int8 scale 2·amax/255 of their own
  // range: 4/255 and 200/255; x / s rounds half to even and clamps at 127.
  const y = q.fakeQuant(tensor(Float32Array.of(1, 2, 100, -50), [2, 2]), qp).data;
  const s0 = Math.fround(4 / 255), s1 = Math.fround(200 / 255);
  const want = [64, 127, 127, -64].map((c, i) => Math.fround(c * (i < 2 ? s0 : s1)));
  assert.deepEqual([...y], want);
  assert.throws(() => q.quantize(tensor(Float32Array.of(1), [1]), qp), LowbitError);
});

Deno.test("block quantizer stores MX block scales along the granularity's axis", () => {
  const rng = createRng(5);
  const q = defaultRegistry().quantizers.get("block");
  const fmt = getFormat("mxfp4") as BlockFormat;
  // A MatMul weight [K=40, N=3]: blocks run along K (axis 0), the last block zero-padded.
  const K = 40, N = 3;
  const w = tensor(Float32Array.from({ length: K * N }, () => rng.normal()), [K, N]);
  const qp = q.fit(w, {
    format: "mxfp4",
    granularity: { kind: "block", axis: 0, size: 32 },
    mode: "symmetric",
  });
  assert.equal(qp.extra!.block_scales.length, N * 2);
  const codes = q.quantize(w, qp);
  const back = q.dequantize(codes, qp, w.shape).data;
  // Reference: the format's own encode/decode over each column, padded to 64.
  for (let n = 0; n < N; n++) {
    const col = new Float32Array(64);
    for (let k = 0; k < K; k++) col[k] = w.data[k * N + n];
    const ref = fmt.decodeBlocks(fmt.encodeBlocks(col));
    for (let k = 0; k < K; k++) assert.equal(back[k * N + n], ref[k], `k=${k} n=${n}`);
  }
  assert.deepEqual(q.fakeQuant(w, qp).data, back);
  // A Conv weight [O=2, I=3, 2, 2] with flatten 2: each output channel's I·kh·kw = 12 values is one row.
  const c = tensor(Float32Array.from({ length: 24 }, () => rng.normal()), [2, 3, 2, 2]);
  const cq = q.fit(c, {
    format: "nvfp4",
    granularity: { kind: "block", axis: 1, size: 16, flatten: 2 },
    mode: "symmetric",
  });
  const nv = getFormat("nvfp4") as BlockFormat;
  const got = q.dequantize(q.quantize(c, cq), cq, c.shape).data;
  for (let o = 0; o < 2; o++) {
    // NVFP4's tensor scale is fitted over the whole tensor: fit both rows together.
    const rows = new Float32Array(32);
    rows.set(c.data.subarray(0, 12), 0);
    rows.set(c.data.subarray(12, 24), 16);
    const ref = nv.decodeBlocks(nv.encodeBlocks(rows));
    for (let j = 0; j < 12; j++) assert.equal(got[o * 12 + j], ref[o * 16 + j]);
  }
  // dynamic activations: scales per row at run time, along axis 1 of NCHW
  const dq = q.fit({ min: Float32Array.of(0), max: Float32Array.of(1) }, {
    format: "mxfp8_e4m3",
    granularity: { kind: "block", axis: 1, size: 32 },
    mode: "symmetric",
  });
  assert.equal(dq.dynamic, true);
  assert.equal(q.onnx, undefined);
});

Deno.test("block quantizer's dynamic fake quantization: per row, zero-padded blocks, through codes", () => {
  // NCHW activations, blocks along the channels at each pixel: 40 channels = one whole block of
  // 32 and a short one of 8; 5 channels = one short block. Reference: each row gathered by hand,
  // zero-padded to whole blocks, encoded and decoded by the format.
  const rng = createRng(5);
  const q = defaultRegistry().quantizers.get("block");
  for (const [format, c] of [["mxfp4", 40], ["mxfp6_e2m3", 5], ["mxfp8_e5m2", 40]] as const) {
    const shape = [2, c, 3, 2], hw = 6;
    const x = Float32Array.from(
      { length: 2 * c * hw },
      (_, i) => i % 11 === 3 ? 0 : rng.normal() * 2 ** ((i % 9) - 4),
    );
    x[17] = NaN, x[50] = -Infinity, x[7] = -0; // two NaN blocks, a signed zero
    const qp = q.fit({ min: Float32Array.of(0), max: Float32Array.of(1) }, {
      format,
      granularity: { kind: "block", axis: 1, size: 32 },
      mode: "symmetric",
    });
    const got = q.fakeQuant(tensor(x, shape), qp, { batch: 0, tags: {}, inputs: {} }).data;
    // Into caller storage: that very array, the same values.
    const out = new Float32Array(x.length);
    const into = q.fakeQuant(tensor(x, shape), qp, undefined, out).data;
    assert.ok(into === out, format);
    assert.deepEqual(into, got, format);
    const bf = getFormat(format) as BlockFormat;
    const pc = Math.ceil(c / 32) * 32;
    for (let n = 0; n < 2; n++) {
      for (let p = 0; p < hw; p++) {
        const row = new Float32Array(pc);
        for (let k = 0; k < c; k++) row[k] = x[(n * c + k) * hw + p];
        const ref = bf.decodeBlocks(bf.encodeBlocks(row));
        for (let k = 0; k < c; k++) {
          // strictEqual is Object.is: NaN equals NaN, −0 differs from 0.
          assert.equal(got[(n * c + k) * hw + p], ref[k], `${format} n${n} c${k} p${p}`);
        }
      }
    }
  }
});

Deno.test("scaled quantizer keeps the fitted scale of ternary, binary, PTQTP and NUPES weights", () => {
  const rng = createRng(9);
  const q = defaultRegistry().quantizers.get("scaled");
  const w = tensor(Float32Array.from({ length: 4 * 128 }, () => rng.normal() * 0.1), [4, 128]);
  for (const format of ["ternary", "binary", "ptqtp", "nupes4"]) {
    const granularity = { kind: "channel", axis: 0 } as const;
    const qp = q.fit(w, { format, granularity, mode: "symmetric" });
    assert.ok(qp.extra?.tensor_scale?.length === 1, format);
    // Reference: the format's own fit-and-decode of the whole scaled tensor (core fakeQuantize).
    const ref = fakeQuantize(w, qp).data;
    const codes = q.quantize(w, qp);
    // Codes alone (as a file stores them) decode to the same values through the stored extras.
    const plain = Uint8Array.from(codes as Uint8Array);
    assert.deepEqual(q.dequantize(plain, qp, w.shape).data, ref, format);
    // On-grid values re-encode to codes of the same values (what saving a quantized model does).
    const again = q.quantize(tensor(ref, w.shape), qp);
    assert.deepEqual(q.dequantize(again, qp, w.shape).data, ref, format);
  }
  assert.throws(
    () =>
      q.fit({ min: Float32Array.of(0), max: Float32Array.of(1) }, {
        format: "ternary",
        granularity: { kind: "tensor" },
        mode: "symmetric",
      }),
    (e: unknown) => e instanceof LowbitError && /weights only/.test(e.message),
  );
});

Deno.test("defaultQuantizerFor() picks the built-in quantizer of every builtin format", () => {
  const r = defaultRegistry();
  for (const name of r.formats.list()) {
    const f = r.formats.get(name);
    const q = r.quantizers.get(defaultQuantizerFor(f));
    assert.ok(q.supports(f), name);
  }
});

Deno.test("fitQParams() per-group puts each group's amax on the format's max", () => {
  const rng = createRng(22);
  const w = tensor(Float32Array.from({ length: 4 * 32 }, () => rng.normal() * 3), [4, 32]);
  for (const format of ["int8", "fp8_e4m3fn", "fp4_e2m1fn", "fp6_e2m3fn"]) {
    const granularity = { kind: "group", axis: 1, size: 16 } as const;
    const qp = fitQParams(w, { format, granularity });
    const fq = fakeQuantize(w, qp).data;
    const r = rangeOf(w, granularity);
    for (let g = 0; g < 8; g++) {
      const amax = Math.max(-r.min[g], r.max[g]);
      let worst = 0;
      for (let i = 0; i < 16; i++) {
        const k = Math.floor(g / 2) * 32 + (g % 2) * 16 + i;
        worst = Math.max(worst, Math.abs(fq[k]));
      }
      // the largest magnitude comes back to within float32 / step rounding of amax
      assert.ok(Math.abs(worst - amax) <= qp.scale[g] * 1.01, `${format} group ${g}`);
    }
  }
});

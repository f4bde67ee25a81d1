import assert from "node:assert/strict";
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  f8e4m3fnToF32,
  f8e5m2ToF32,
  type MinifloatFormat,
  minifloatFormat,
  parseFormatName,
} from "./mod.ts";
import { createRng } from "../rng.ts";
import { getFormat } from "../default_registry.ts";
import { builtinFormats } from "./builtin.ts";
import { type RefCode, refEncode, refGrid, refSpec } from "./_reference.ts";

const dv = new DataView(new ArrayBuffer(4));
const bitsOf = (v: number): number => (dv.setFloat32(0, v), dv.getUint32(0));
const fromBits = (b: number): number => (dv.setUint32(0, b >>> 0), dv.getFloat32(0));
const nextUp = (v: number): number => (v === 0 ? 2 ** -149 : fromBits(bitsOf(v) + 1));
const nextDown = (v: number): number => fromBits(bitsOf(v) - 1);

/** Every float32 class the issue lists, positive side (mirrored by the caller). */
function probes(grid: RefCode[]): number[] {
  const out = new Set<number>([
    0,
    2 ** -149,
    2 ** -140,
    3 * 2 ** -149,
    nextDown(2 ** -126),
    2 ** -126,
  ]);
  const vals = grid.map((g) => g.value);
  for (let i = 0; i < vals.length; i++) {
    const g = vals[i];
    out.add(g);
    if (g > 0) {
      out.add(nextUp(g));
      out.add(nextDown(g));
    }
    if (i + 1 < vals.length) {
      const mid = (g + vals[i + 1]) / 2;
      assert.equal(Math.fround(mid), mid, "midpoints of a ≤16-bit grid are float32");
      out.add(mid);
      out.add(nextUp(mid));
      if (mid > 0) out.add(nextDown(mid));
    }
  }
  const max = vals[vals.length - 1];
  const next = 2 ** (Math.floor(Math.log2(max)) + 1);
  const overMid = (max + next) / 2;
  for (const v of [overMid, nextUp(overMid), nextDown(overMid), next, 2 * next, max * 1.0001]) {
    if (Math.fround(v) < Infinity) out.add(Math.fround(v));
  }
  for (let k = 0; k < 23; k++) {
    // float32 subnormals: powers of two, and their neighbours
    out.add(2 ** k * 2 ** -149);
    out.add((2 ** k + 1) * 2 ** -149);
    out.add((2 ** (k + 1) - 1) * 2 ** -149);
  }
  out.add(fromBits(0x7f7fffff)); // float32 max
  out.add(Infinity);
  return [...out];
}

function checkAgainstReference(f: MinifloatFormat): number {
  const s = refSpec(f);
  const grid = refGrid(s);
  const pos = probes(grid);
  const xs = new Float32Array(pos.length * 2);
  pos.forEach((v, i) => {
    xs[2 * i] = v;
    xs[2 * i + 1] = -v;
  });
  // Random float32 patterns across the whole range, deterministic.
  let seed = 12345;
  const rnd = new Float32Array(4000);
  const rb = new Uint32Array(rnd.buffer);
  for (let i = 0; i < rb.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    rb[i] = seed;
    if (Number.isNaN(rnd[i])) rnd[i] = 1;
  }
  const all = new Float32Array([...xs, ...rnd]);
  for (const overflow of ["infinity", "saturate"] as const) {
    const got = f.encode(all, overflow);
    for (let i = 0; i < all.length; i++) {
      const want = refEncode(s, grid, all[i], overflow === "infinity");
      if (got[i] !== want) {
        assert.fail(
          `${f.name} (${overflow}): encode(${all[i]}) = 0x${got[i].toString(16)}, ` +
            `reference 0x${want.toString(16)}`,
        );
      }
    }
  }
  // NaN (quiet, signalling, either sign) follows the documented rule, not the grid.
  const nanBits = new Uint32Array([0x7fc00000, 0xffc00000, 0x7f800001, 0xffbfffff]);
  const nans = f.encode(new Float32Array(nanBits.buffer));
  nanBits.forEach((b, i) => {
    const neg = b >>> 31 === 1;
    const signBit = 2 ** (s.E + s.M);
    const nanMag = s.special === "ieee"
      ? (2 ** s.E - 1) * 2 ** s.M + 2 ** (s.M - 1)
      : s.special === "fn"
      ? 2 ** (s.E + s.M) - 1
      : -1;
    const want = !s.signed
      ? nanMag
      : nanMag >= 0
      ? (neg ? signBit : 0) + nanMag
      : (neg ? 0 : signBit); // no NaN: ml_dtypes' −quiet_NaN convention, ∓0
    assert.equal(nans[i], want, `${f.name}: NaN 0x${b.toString(16)}`);
  });
  return all.length;
}

const named = builtinFormats().filter((f): f is MinifloatFormat => f.family === "float");
const parametric = [
  "fp_e3m4",
  "fp_e2m5fn",
  "fp8_e4m3",
  "fp_e5m2fn",
  "fp_e4m3fn_b11",
  "fp_e2m2fn",
  "fp_e3m0fn",
  "fp_e4m0fn",
  "fp_e1m2fn",
  "fp_e3m3fn",
  "fp_e6m9",
].map((n) => parseFormatName(n) as MinifloatFormat);

for (const f of [...named, ...parametric]) {
  Deno.test(`encode() matches the independent reference on every float32 class: ${f.name}`, () => {
    assert.ok(checkAgainstReference(f) > 100);
  });
}

Deno.test("encode() and decode() round-trip every finite code", () => {
  for (const f of [...named, ...parametric]) {
    const n = 2 ** f.bits;
    const codes = f.bits <= 8 ? new Uint8Array(n) : new Uint16Array(n);
    codes.forEach((_, i) => (codes[i] = i));
    const vals = f.decode(codes);
    const back = f.encode(vals);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(vals[i])) continue;
      assert.equal(back[i], i, `${f.name}: code 0x${i.toString(16)} → ${vals[i]}`);
    }
  }
});

// *** hand-derived goldens from the specs ***

function enc(name: string, xs: number[]): number[] {
  const f = named.find((g) => g.name === name)!;
  return [...f.encode(new Float32Array(xs))];
}

Deno.test("fp8_e4m3fn: max 448 = S.1111.110, NaN S.1111.111, saturates, subnormals", () => {
  const f = named.find((g) => g.name === "fp8_e4m3fn")!;
  assert.equal(f.max, 448);
  assert.equal(f.minNormal, 2 ** -6);
  assert.equal(f.minSubnormal, 2 ** -9);
  assert.deepEqual(enc("fp8_e4m3fn", [448, -448, 464, 1e9, Infinity, -Infinity]), [
    0x7e,
    0xfe,
    0x7e,
    0x7e,
    0x7e,
    0xfe,
  ]);
  assert.deepEqual(enc("fp8_e4m3fn", [NaN, -NaN]), [0x7f, 0xff]);
  assert.deepEqual(enc("fp8_e4m3fn", [2 ** -9, 2 ** -10, 1.5 * 2 ** -10, 2 ** -6, 1]), [
    0x01,
    0x00, // tie between 0 and 2^-9 → 0 (even)
    0x01,
    0x08,
    0x38,
  ]);
  assert.ok(Number.isNaN(f.decode(new Uint8Array([0x7f]))[0]));
  assert.equal(f.decode(new Uint8Array([0x80]))[0], -0);
});

Deno.test("fp8_e5m2: max 57344, overflow and ±Inf give ±Inf, NaN quiet 0x7E", () => {
  const f = named.find((g) => g.name === "fp8_e5m2")!;
  assert.equal(f.max, 57344);
  assert.equal(f.minSubnormal, 2 ** -16);
  assert.deepEqual(enc("fp8_e5m2", [57344, 61439, 61440, Infinity, -Infinity, NaN, -NaN]), [
    0x7b,
    0x7b,
    0x7c, // midpoint to the (virtual) next binade: tie → even → Inf
    0x7c,
    0xfc,
    0x7e,
    0xfe,
  ]);
  assert.deepEqual([...f.encode(new Float32Array([61440, Infinity]), "saturate")], [0x7b, 0x7b]);
  assert.deepEqual([...f.decode(new Uint8Array([0x7c, 0xfc]))], [Infinity, -Infinity]);
});

Deno.test("fp6 and fp4: max 28, 7.5 and 6; min subnormals; NaN → ∓0 as ml_dtypes", () => {
  const by = (n: string) => named.find((g) => g.name === n)!;
  assert.deepEqual([by("fp6_e3m2fn").max, by("fp6_e3m2fn").minSubnormal], [28, 0.0625]);
  assert.deepEqual([by("fp6_e2m3fn").max, by("fp6_e2m3fn").minSubnormal], [7.5, 0.125]);
  assert.deepEqual([by("fp4_e2m1fn").max, by("fp4_e2m1fn").minSubnormal], [6, 0.5]);
  assert.deepEqual(enc("fp6_e3m2fn", [28, 100, -Infinity, NaN, -NaN]), [0x1f, 0x1f, 0x3f, 0x20, 0]);
  assert.deepEqual(enc("fp6_e2m3fn", [7.5, 7.75, 0.0625, 0.1875]), [0x1f, 0x1f, 0x00, 0x02]);
  assert.deepEqual(enc("fp4_e2m1fn", [6, -6, 5, 0.25, 0.75, Infinity, NaN]), [
    7,
    15,
    6,
    0,
    2,
    7,
    8,
  ]);
  assert.deepEqual([...by("fp4_e2m1fn").values()], [
    -6,
    -4,
    -3,
    -2,
    -1.5,
    -1,
    -0.5,
    0,
    0.5,
    1,
    1.5,
    2,
    3,
    4,
    6,
  ]);
});

Deno.test("e8m0: range 2^-127..2^127, NaN = 0xFF, no zero, unsigned", () => {
  const f = named.find((g) => g.name === "e8m0")!;
  assert.equal(f.max, 2 ** 127);
  assert.equal(f.minNormal, 2 ** -127);
  assert.equal(f.min, 2 ** -127);
  assert.equal(f.values().length, 255);
  assert.deepEqual(enc("e8m0", [1, 2 ** -127, 2 ** 127, 0.5, 3, 1.4, 0, -0]), [
    0x7f,
    0x00,
    0xfe,
    0x7e,
    0x81, // 3 = 1.5 · 2: tie, both significands odd → up to 4
    0x7f,
    0x00,
    0x00,
  ]);
  assert.deepEqual(enc("e8m0", [NaN, -1, -Infinity, Infinity, 2 ** 128 * 0.9]), [
    0xff,
    0xff,
    0xff,
    0xfe,
    0xfe,
  ]);
  // Below 2^-126 (float32 subnormal inputs): nearest, ties up as everywhere in E8M0.
  assert.deepEqual(enc("e8m0", [1.25 * 2 ** -127, 1.5 * 2 ** -127, 2 ** -149]), [0x00, 0x01, 0x00]);
  assert.ok(Number.isNaN(f.decode(new Uint8Array([0xff]))[0]));
  assert.equal(f.decode(new Uint8Array([0]))[0], 2 ** -127);
});

Deno.test("minifloatFormat() rejects impossible definitions", () => {
  assert.throws(
    () => minifloatFormat({ name: "x", exponentBits: 9, mantissaBits: 1, special: "fn" }),
    /exponent bits/,
  );
  assert.throws(
    () => minifloatFormat({ name: "x", exponentBits: 5, mantissaBits: 12, special: "ieee" }),
    /16 bits/,
  );
  assert.throws(() => parseFormatName("fp8_e4m4"), /width 8/);
});

Deno.test("encode() of an empty array is empty", () => {
  for (const f of named) assert.equal(f.encode(new Float32Array(0)).length, 0);
  for (const f of named) assert.equal(f.decode(new Uint8Array(0)).length, 0);
});

Deno.test("encode() of 1e6 values takes well under a second", () => {
  const f = named.find((g) => g.name === "fp8_e4m3fn")!;
  const x = new Float32Array(1e6).map((_, i) => Math.sin(i) * 500);
  f.encode(x); // warm up
  const t0 = performance.now();
  f.encode(x);
  const dt = performance.now() - t0;
  assert.ok(dt < 500, `${dt} ms`);
});

Deno.test("encode() equals numpy float16 and torch bfloat16 on 5003 golden inputs", async () => {
  const url = new URL("./testdata/fp16_bf16_golden.json", import.meta.url);
  const g = JSON.parse(await Deno.readTextFile(url)) as {
    inputs: number[];
    fp16: number[];
    bf16: number[];
  };
  const x = new Float32Array(new Uint32Array(g.inputs).buffer);
  for (const name of ["fp16", "bf16"] as const) {
    const got = named.find((f) => f.name === name)!.encode(x);
    for (let i = 0; i < x.length; i++) {
      if (got[i] !== g[name][i]) {
        assert.fail(
          `${name}: encode(${x[i]}) = 0x${got[i].toString(16)}, golden 0x${
            g[name][i].toString(16)
          }`,
        );
      }
    }
  }
});

Deno.test("the scalar float16 / bfloat16 / float8 codecs agree with the fp16, bf16 and fp8 formats", () => {
  const rng = createRng(77);
  const xs = Float32Array.from(
    { length: 4000 },
    (_, i) =>
      i < 2000 ? rng.normal() * 2 ** Math.floor(rng.next() * 40 - 20) : (rng.next() - 0.5) * 1e5,
  );
  const f16 = getFormat("fp16"), bf16 = getFormat("bf16");
  const c16 = f16.encode(xs), cb = bf16.encode(xs);
  for (let i = 0; i < xs.length; i++) {
    assert.equal(f32ToF16Bits(xs[i]), c16[i], `fp16 ${xs[i]}`);
    assert.equal(f32ToBf16Bits(xs[i]), cb[i], `bf16 ${xs[i]}`);
  }
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const e4 = getFormat("fp8_e4m3fn").decode(all), e5 = getFormat("fp8_e5m2").decode(all);
  for (let c = 0; c < 256; c++) {
    assert.ok(
      Object.is(f8e4m3fnToF32(c), e4[c]) || (Number.isNaN(e4[c]) && Number.isNaN(f8e4m3fnToF32(c))),
      `e4m3 ${c}`,
    );
    assert.ok(
      Object.is(f8e5m2ToF32(c), e5[c]) || (Number.isNaN(e5[c]) && Number.isNaN(f8e5m2ToF32(c))),
      `e5m2 ${c}`,
    );
  }
  const h = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const d16 = f16.decode(h), db = bf16.decode(h);
  for (let c = 0; c < 65536; c += 7) {
    assert.ok(Object.is(f16BitsToF32(c), d16[c]) || Number.isNaN(d16[c]), `f16 ${c}`);
    assert.ok(Object.is(bf16BitsToF32(c), db[c]) || Number.isNaN(db[c]), `bf16 ${c}`);
  }
});

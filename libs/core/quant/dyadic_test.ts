import assert from "node:assert/strict";
import {
  createRng,
  dyadicFromScale,
  LowbitError,
  mulShiftRound,
  requantizeDyadic,
} from "@lowbit/core";

/** floor((a*m + 2^(s-1)) / 2^s) in exact BigInt arithmetic. */
function refMulShift(a: number, m: number, s: number): bigint {
  const p = BigInt(a) * BigInt(m) + (s === 0 ? 0n : 1n << BigInt(s - 1));
  // BigInt >> is an arithmetic (floor) shift
  return p >> BigInt(s);
}

Deno.test("mulShiftRound() equals exact int64 multiply, add half, arithmetic shift", () => {
  const rng = createRng(11);
  const accs = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 12345, -12345];
  const mults = [0, 1, 2 ** 30, 2 ** 31 - 1, 0x5a5a5a5a];
  for (let trial = 0; trial < 20000; trial++) {
    const a = trial < 300 ? accs[trial % accs.length] : (rng.int(2 ** 32) - 2 ** 31);
    const m = trial < 300 ? mults[Math.floor(trial / 7) % mults.length] : rng.int(2 ** 31);
    const s = rng.int(64);
    const want = refMulShift(a, m, s);
    const got = mulShiftRound(a, m, s);
    const big = want > 2n ** 36n || want < -(2n ** 36n);
    if (big) {
      // only sign and magnitude matter (callers saturate)
      assert.ok(Math.sign(got) === Math.sign(Number(want)) && Math.abs(got) > 2 ** 35);
    } else {
      assert.equal(BigInt(got), want, `a=${a} m=${m} s=${s}`);
    }
  }
});

Deno.test("mulShiftRound() rounds ties toward +infinity", () => {
  assert.deepEqual(
    [5, 3, 1, -1, -3, -5].map((a) => mulShiftRound(a, 1, 1)),
    [3, 2, 1, 0, -1, -2],
  );
  assert.equal(mulShiftRound(-3, 2 ** 30, 32), -1); // -0.75 -> -1
  assert.equal(mulShiftRound(-2, 2 ** 30, 32), 0); // -0.5 -> 0
});

Deno.test("dyadicFromScale() is exact for float32 scales", () => {
  const rng = createRng(5);
  for (let i = 0; i < 5000; i++) {
    const s = Math.fround(2 ** ((rng.next() - 0.9) * 36)); // 2^-32.4 .. 2^3.6
    const { multiplier, shift } = dyadicFromScale(s);
    assert.ok(multiplier >= 2 ** 30 && multiplier < 2 ** 31, `${s}`);
    assert.ok(shift >= 0 && shift <= 63);
    assert.equal(multiplier / 2 ** shift, s);
  }
  assert.deepEqual(dyadicFromScale(1), { multiplier: 2 ** 30, shift: 30 });
  // a double multiplier rounds to nearest (here up to 2^31, renormalised)
  assert.deepEqual(dyadicFromScale(1 - 2 ** -40), { multiplier: 2 ** 30, shift: 30 });
  // tiny multipliers denormalise, then vanish
  assert.deepEqual(dyadicFromScale(2 ** -40), { multiplier: 2 ** 23, shift: 63 });
  assert.deepEqual(dyadicFromScale(2 ** -70), { multiplier: 0, shift: 0 });
  for (const bad of [0, -1, NaN, Infinity, 2 ** 31]) {
    assert.throws(() => dyadicFromScale(bad), LowbitError);
  }
});

Deno.test("requantizeDyadic() equals round-half-up(acc * scale) + zp, saturated", () => {
  const rng = createRng(9);
  const n = 4096, C = 8;
  const acc = Int32Array.from({ length: n }, () => Math.round((rng.next() - 0.5) * 2 ** 20));
  acc[0] = 2 ** 31 - 1;
  acc[1] = -(2 ** 31);
  const scales = Array.from({ length: C }, () => Math.fround(rng.next() * 2 ** -12));
  const ds = scales.map(dyadicFromScale);
  const m = Int32Array.from(ds, (d) => d.multiplier), s = Int32Array.from(ds, (d) => d.shift);
  const zp = -3;
  const out = requantizeDyadic(acc, m, s, zp, new Int8Array(n));
  for (let i = 0; i < n; i++) {
    const c = i % C;
    // exact: scale = m / 2^s, so acc * scale + 1/2 floored is the reference
    const r = Number(refMulShift(acc[i], m[c], s[c])) + zp;
    assert.equal(out[i], Math.max(-128, Math.min(127, r)), `i=${i}`);
    // and it is within half a step of the real product (ties up)
    if (r > -128 && r < 127) assert.ok(Math.abs(r - zp - acc[i] * scales[c]) <= 0.5);
  }
  assert.equal(out[0], 127);
  assert.equal(out[1], -128);
});

Deno.test("requantizeDyadic() rejects mismatched parameters", () => {
  const acc = new Int32Array(6);
  assert.throws(
    () => requantizeDyadic(acc, 1, 0, 0, new Int8Array(5)),
    (e: unknown) => e instanceof LowbitError && e.code === "SHAPE_MISMATCH",
  );
  assert.throws(
    () =>
      requantizeDyadic(
        acc,
        Int32Array.of(1, 1, 1, 1),
        Int32Array.of(0, 0, 0, 0),
        0,
        new Int8Array(6),
      ),
    (e: unknown) => e instanceof LowbitError && /4 multipliers/.test(e.message),
  );
  assert.throws(
    () => requantizeDyadic(acc, 1, 64, 0, new Int8Array(6)),
    (e: unknown) => e instanceof LowbitError && /shift in \[0, 63\]/.test(e.message),
  );
  assert.throws(
    () => requantizeDyadic(acc, 1, 0, 200, new Int8Array(6)),
    (e: unknown) => e instanceof LowbitError && /zero point 200/.test(e.message),
  );
});

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { addF32, type FloatKernels } from "./float.ts";
import { refPost } from "./reference_float.ts";
import { floatContexts, randF32, rng } from "./_test_util.ts";

const CTX: FloatKernels[] = floatContexts();

function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i]))) continue;
    assert.fail(`${what}: output[${i}] = ${got[i]}, reference ${want[i]}`);
  }
}

/** The separate ops, value by value: DequantizeLinear of a's codes, Add, Relu, QuantizeLinear. */
function reference(
  a: Float32Array,
  b: Float32Array,
  o: {
    dequantize?: { scale: number; nanCode: number };
    relu?: boolean;
    quantize?: { scale: number; lo: number; hi: number };
  },
): Float32Array {
  const f = Math.fround;
  return a.map((x, i) => {
    if (o.dequantize) x = f((Number.isNaN(x) ? o.dequantize.nanCode : x) * f(o.dequantize.scale));
    let v = f(x + b[i]);
    if (o.relu) v = v > 0 ? v : 0; // the Relu op (NaN → 0)
    if (o.quantize) v = refPost(v, { quantize: o.quantize });
    return v;
  });
}

Deno.test("addF32() equals Add → Relu → QuantizeLinear (and DequantizeLinear first) bit for bit", () => {
  const r = rng(71);
  const cases = [
    {},
    { relu: true },
    { quantize: { scale: 0.05, lo: -128, hi: 127 } },
    { relu: true, quantize: { scale: 0.013, lo: 0, hi: 255 } },
    { dequantize: { scale: 0.02, nanCode: -3 }, relu: true },
    {
      dequantize: { scale: 0.1, nanCode: 128 },
      relu: true,
      quantize: { scale: 0.03, lo: -7, hi: 9 },
    },
  ];
  for (const k of CTX) {
    for (const n of [1, 3, 4, 17, 1000]) {
      for (const o of cases) {
        const a = o.dequantize
          ? Float32Array.from({ length: n }, () => Math.round(r() * 300 - 150))
          : randF32(n, r, 4);
        const b = randF32(n, r, 4);
        if (n > 4) {
          a.set([NaN, -0, 0.25, 1e30]);
          b.set([1, -0, -0.25, 1]);
        }
        const want = reference(a, b, o);
        const what = `n ${n} ${JSON.stringify(o)} (${k.isa})`;
        assertSameBits(addF32(a, b, { ...o, kernels: k }), want, what);
        // In place over either operand: the same values.
        const a2 = a.slice(), b2 = b.slice();
        assert.ok(addF32(a2, b, { ...o, kernels: k, out: a2 }) === a2);
        assertSameBits(a2, want, `${what} out = a`);
        addF32(a, b2, { ...o, kernels: k, out: b2 });
        assertSameBits(b2, want, `${what} out = b`);
      }
    }
  }
  // Hand-derived: ReLU maps −0 and NaN to +0, as the Relu op; −0 + −0 is −0 without it.
  const y = addF32(new Float32Array([-0, NaN, 2]), new Float32Array([-0, 1, -3]), { relu: true });
  assert.ok(Object.is(y[0], 0) && Object.is(y[1], 0) && Object.is(y[2], 0));
  assert.ok(Object.is(addF32(new Float32Array([-0]), new Float32Array([-0]))[0], -0));
});

Deno.test("addF32() rejects bad operands and parameters with LowbitError", () => {
  const is = (re: RegExp) => (e: unknown) => e instanceof LowbitError && re.test(e.message);
  assert.throws(() => addF32(new Float32Array(2), new Float32Array(3)), is(/addF32: b/));
  assert.throws(
    () => addF32(new Float32Array(2), new Float32Array(2), { out: new Float32Array(1) }),
    is(/addF32: out/),
  );
  assert.throws(
    () => addF32([1] as unknown as Float32Array, new Float32Array(1)),
    is(/Float32Arrays/),
  );
  assert.throws(
    () =>
      addF32(new Float32Array(1), new Float32Array(1), {
        dequantize: { scale: 0, nanCode: 0 },
      }),
    is(/dequantize/),
  );
  assert.throws(
    () =>
      addF32(new Float32Array(1), new Float32Array(1), {
        quantize: { scale: 1, lo: 0.5, hi: 2 },
      }),
    is(/quantize/),
  );
});

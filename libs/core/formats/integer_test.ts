import assert from "node:assert/strict";
import { LowbitError } from "../errors.ts";
import { integerFormat } from "./integer.ts";
import { parseFormatName } from "./names.ts";

Deno.test("encode() rounds midpoints to even and clamps to the range", () => {
  const int8 = integerFormat("int8", 8, true);
  const x = new Float32Array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 127.5, 200, -128.5, -1e9, 3.49]);
  const want = [0, 2, 2, 0, -2, -2, 127, 127, -128, -128, 3];
  assert.deepEqual([...new Int8Array(int8.encode(x).buffer)], want);
  assert.deepEqual([...int8.decode(int8.encode(x))], want);
});

Deno.test("encode() stores two's complement codes in the low bits", () => {
  const int4 = integerFormat("int4", 4, true);
  assert.deepEqual([...int4.encode(new Float32Array([-8, -1, 0, 7]))], [8, 15, 0, 7]);
  assert.deepEqual([...int4.decode(new Uint8Array([8, 15, 0, 7]))], [-8, -1, 0, 7]);
  const int16 = integerFormat("int16", 16, true);
  const c = int16.encode(new Float32Array([-32768, -1, 32767, 40000]));
  assert.ok(c instanceof Uint16Array);
  assert.deepEqual([...c], [0x8000, 0xffff, 0x7fff, 0x7fff]);
  assert.deepEqual([...int16.decode(c)], [-32768, -1, 32767, 32767]);
});

Deno.test("unsigned formats clamp negatives to 0 and ±Inf to the ends", () => {
  const u3 = integerFormat("uint3", 3, false);
  assert.deepEqual([...u3.encode(new Float32Array([-1, 3.5, 4.5, 9, Infinity, -Infinity]))], [
    0,
    4,
    4,
    7,
    7,
    0,
  ]);
  assert.deepEqual([...u3.values()], [0, 1, 2, 3, 4, 5, 6, 7]);
  const i2 = integerFormat("int2", 2, true);
  assert.deepEqual([i2.min, i2.max, i2.values().length], [-2, 1, 4]);
});

Deno.test("encode() rejects NaN with the index in the message", () => {
  const int8 = integerFormat("int8", 8, true);
  assert.throws(
    () => int8.encode(new Float32Array([1, NaN])),
    (e: unknown) =>
      e instanceof LowbitError && e.code === "INVALID_TENSOR" && /index 1/.test(e.message),
  );
});

Deno.test("fixed-point formats scale by 2^-fractionBits", () => {
  const f = parseFormatName("int8_f6")!;
  assert.deepEqual([f.max, f.min, f.minNormal], [127 / 64, -2, 1 / 64]);
  assert.deepEqual([...f.encode(new Float32Array([1, -0.5, 1 / 128, 3 / 128]))], [64, 224, 0, 2]);
});

Deno.test("integerFormat() rejects widths outside 1..16", () => {
  assert.throws(() => integerFormat("int1", 1, true), LowbitError);
  assert.throws(() => integerFormat("uint17", 17, false), LowbitError);
  assert.throws(() => parseFormatName("int40"), /2\.\.16/);
});

Deno.test("encode() of an empty array is empty", () => {
  const f = integerFormat("int8", 8, true);
  assert.equal(f.encode(new Float32Array(0)).length, 0);
  assert.equal(f.decode(new Uint8Array(0)).length, 0);
});

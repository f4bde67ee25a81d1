import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import type { TensorData } from "./ir.ts";
import { readNpy, writeNpy } from "./npy.ts";

const header = (dict: string, major = 1): Uint8Array => {
  const pre = major === 1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const h = dict + " ".repeat(total - pre - dict.length - 1) + "\n";
  const out = new Uint8Array(total);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, h.length, true);
  else dv.setUint32(8, h.length, true);
  for (let i = 0; i < h.length; i++) out[pre + i] = h.charCodeAt(i);
  return out;
};
const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
};
const isParse = (e: unknown): boolean => e instanceof LowbitError && e.code === "PARSE_ERROR";

Deno.test("readNpy() reads the digits fixtures", () => {
  const x = readNpy(Deno.readFileSync("fixtures/digits/eval_x.npy"));
  assert.equal(x.dtype, "float32");
  assert.deepEqual(x.shape.slice(1), [1, 8, 8]);
  const y = readNpy(Deno.readFileSync("fixtures/digits/eval_y.npy"));
  assert.equal(y.dtype, "int64");
  assert.equal(y.shape[0], x.shape[0]);
});

Deno.test("writeNpy() round-trips every supported dtype", () => {
  const cases: TensorData[] = [
    { dtype: "float32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, -6.5]) },
    { dtype: "float64", shape: [2], data: new Float64Array([Math.PI, -1]) },
    { dtype: "int64", shape: [1, 2], data: new BigInt64Array([-(2n ** 62n), 7n]) },
    { dtype: "int32", shape: [3], data: new Int32Array([-1, 0, 2 ** 31 - 1]) },
    { dtype: "uint8", shape: [2, 1, 2], data: new Uint8Array([0, 255, 1, 2]) },
    { dtype: "int8", shape: [2], data: new Int8Array([-128, 127]) },
    { dtype: "bool", shape: [3], data: new Uint8Array([1, 0, 1]) },
    { dtype: "float16", shape: [1], data: new Uint16Array([0x3c00]) },
    { dtype: "float32", shape: [], data: new Float32Array([42]) },
    { dtype: "float32", shape: [0, 5], data: new Float32Array(0) },
  ];
  for (const t of cases) {
    const b = writeNpy(t);
    assert.equal((b[8] | (b[9] << 8)) % 64, 54, "header padded to 64");
    assert.deepStrictEqual(readNpy(b), t);
  }
});

Deno.test("readNpy() reads version 2.0 headers and '=' byte order", () => {
  const body = new Uint8Array(new Int32Array([5, 6]).buffer);
  const t = readNpy(
    concat(header("{'descr': '=i4', 'fortran_order': False, 'shape': (2,), }", 2), body),
  );
  assert.deepEqual(t, { dtype: "int32", shape: [2], data: new Int32Array([5, 6]) });
});

Deno.test("readNpy() rejects Fortran order with a clear error", () => {
  const b = concat(
    header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }"),
    new Uint8Array(16),
  );
  assert.throws(
    () => readNpy(b, "x.npy"),
    (e) => e instanceof LowbitError && e.code === "UNSUPPORTED" && /Fortran/.test(e.message),
  );
});

Deno.test("readNpy() rejects big-endian and object dtypes", () => {
  for (const d of [">f4", "|O", "<c8"]) {
    const b = concat(
      header(`{'descr': '${d}', 'fortran_order': False, 'shape': (1,), }`),
      new Uint8Array(8),
    );
    assert.throws(() => readNpy(b), (e) => e instanceof LowbitError && e.code === "UNSUPPORTED");
  }
});

Deno.test("readNpy() rejects truncated data, bad magic and a header longer than the file", () => {
  const good = writeNpy({ dtype: "float32", shape: [4], data: new Float32Array(4) });
  assert.throws(() => readNpy(good.subarray(0, good.length - 1), "a.npy"), isParse);
  assert.throws(() => readNpy(good.subarray(0, 20)), isParse);
  const bad = good.slice();
  bad[1] = 0;
  assert.throws(() => readNpy(bad), isParse);
  const long = good.slice();
  long[9] = 0xff;
  assert.throws(() => readNpy(long), isParse);
  const shape = concat(
    header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"),
    new Uint8Array(4),
  );
  assert.throws(() => readNpy(shape), isParse);
});

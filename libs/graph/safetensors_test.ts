import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import type { TensorData } from "./ir.ts";
import {
  readSafetensors,
  readSafetensorsFile,
  writeSafetensors,
  writeSafetensorsFile,
} from "./safetensors.ts";

/** Builds a file from a raw header object and data bytes. */
function raw(header: unknown, data: Uint8Array, lengthOverride?: bigint): Uint8Array {
  const j = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + j.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(j.length), true);
  out.set(j, 8);
  out.set(data, 8 + j.length);
  return out;
}

function parseError(f: () => unknown, re: RegExp, tensor?: string): void {
  assert.throws(f, (e) => {
    assert.ok(e instanceof LowbitError, String(e));
    assert.equal(e.code, "PARSE_ERROR");
    assert.match(e.message, re);
    if (tensor !== undefined) assert.equal(e.subject.tensor, tensor);
    return true;
  });
}

const all: Map<string, TensorData> = new Map<string, TensorData>([
  ["f32", { dtype: "float32", shape: [2, 2], data: new Float32Array([1, -2, 3.5, 0]) }],
  ["f16", { dtype: "float16", shape: [1], data: new Uint16Array([0x3c00]) }],
  ["bf16", { dtype: "bfloat16", shape: [2], data: new Uint16Array([0x3f80, 0xbf80]) }],
  ["f64", { dtype: "float64", shape: [1], data: new Float64Array([Math.E]) }],
  ["i8", { dtype: "int8", shape: [3], data: new Int8Array([-128, 0, 127]) }],
  ["u8", { dtype: "uint8", shape: [1], data: new Uint8Array([255]) }],
  ["i16", { dtype: "int16", shape: [1], data: new Int16Array([-300]) }],
  ["i32", { dtype: "int32", shape: [1], data: new Int32Array([-7]) }],
  ["i64", { dtype: "int64", shape: [2], data: new BigInt64Array([-(2n ** 60n), 1n]) }],
  ["bool", { dtype: "bool", shape: [2], data: new Uint8Array([0, 1]) }],
  ["fp8", { dtype: "float8e4m3fn", shape: [1], data: new Uint8Array([0x7e]) }],
  ["q4", { dtype: "int4", shape: [3], data: new Int8Array([-8, 7, 1]) }],
  ["u4", { dtype: "uint4", shape: [1, 2], data: new Uint8Array([15, 3]) }],
  ["empty", { dtype: "float32", shape: [0], data: new Float32Array(0) }],
]);

Deno.test("writeSafetensors() round-trips every dtype, packed int4 and metadata", () => {
  const b = writeSafetensors(all, { plan: "{}", "a b": "ü" });
  const st = readSafetensors(b);
  assert.deepStrictEqual(st.tensors, all);
  assert.deepEqual(st.metadata, { plan: "{}", "a b": "ü" });
});

Deno.test("writeSafetensorsFile() writes atomically and readSafetensorsFile() reads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSafetensorsFile(`${dir}/m.safetensors`, all, { k: "v" });
    const st = await readSafetensorsFile(`${dir}/m.safetensors`);
    assert.deepStrictEqual(st.tensors, all);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["m.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readSafetensors() rejects a header larger than the file", () => {
  parseError(() => readSafetensors(raw({}, new Uint8Array(0), 1000n)), /larger than the file/);
  parseError(() => readSafetensors(raw({}, new Uint8Array(0), 2n ** 63n)), /larger than the file/);
  parseError(() => readSafetensors(new Uint8Array(5)), /shorter than the 8-byte/);
});

Deno.test("readSafetensors() enforces the header size limit", () => {
  const b = raw({ __metadata__: { pad: "x".repeat(200) } }, new Uint8Array(0));
  parseError(() => readSafetensors(b, { maxHeaderBytes: 100 }), /exceeds the limit/);
});

Deno.test("readSafetensors() rejects invalid JSON and non-object headers", () => {
  const bad = raw({}, new Uint8Array(0));
  bad[8] = 0x5b; // '['
  parseError(() => readSafetensors(bad, { fileName: "x.safetensors" }), /not valid UTF-8 JSON/);
  parseError(() => readSafetensors(raw([1], new Uint8Array(0))), /not a JSON object/);
  parseError(
    () => readSafetensors(raw({ __metadata__: { a: 1 } }, new Uint8Array(0))),
    /not a string/,
  );
});

Deno.test("readSafetensors() rejects offsets out of bounds", () => {
  const h = { w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  parseError(() => readSafetensors(raw(h, new Uint8Array(4))), /outside the data section/, "w");
  const neg = { w: { dtype: "F32", shape: [1], data_offsets: [-4, 0] } };
  parseError(() => readSafetensors(raw(neg, new Uint8Array(4))), /non-negative/, "w");
});

Deno.test("readSafetensors() rejects overlapping tensors", () => {
  const h = {
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  };
  parseError(() => readSafetensors(raw(h, new Uint8Array(12))), /overlaps/, "b");
});

Deno.test("readSafetensors() rejects sizes that disagree with dtype × shape", () => {
  const h = { w: { dtype: "F16", shape: [3], data_offsets: [0, 8] } };
  parseError(() => readSafetensors(raw(h, new Uint8Array(8))), /needs 6 bytes/, "w");
  const u = { w: { dtype: "F4", shape: [1], data_offsets: [0, 1] } };
  parseError(() => readSafetensors(raw(u, new Uint8Array(1))), /unknown dtype/, "w");
});

Deno.test("readSafetensors() rejects gaps unless strict is off", () => {
  const h = { a: { dtype: "U8", shape: [2], data_offsets: [2, 4] } };
  const b = raw(h, new Uint8Array(6));
  parseError(() => readSafetensors(b), /gap before/, "a");
  const st = readSafetensors(b, { strict: false });
  assert.deepEqual(st.tensors.get("a")?.shape, [2]);
  const trailing = raw({ a: { dtype: "U8", shape: [2], data_offsets: [0, 2] } }, new Uint8Array(3));
  parseError(() => readSafetensors(trailing), /unused bytes/);
});

Deno.test("writeSafetensors() refuses string tensors", () => {
  assert.throws(
    () => writeSafetensors(new Map([["s", { dtype: "string", shape: [1], data: ["x"] }]])),
    (e) => e instanceof LowbitError && e.code === "UNSUPPORTED",
  );
});

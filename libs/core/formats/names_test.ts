import assert from "node:assert/strict";
import { LowbitError } from "../errors.ts";
import { createRegistry } from "../registry.ts";
import { builtinFormats } from "./builtin.ts";
import { type MinifloatFormat, parseFormatName } from "./mod.ts";
import { getFormat } from "../default_registry.ts";

const REQUIRED = [
  ..."2345678".split("").map((b) => `int${b}`),
  "int16",
  ..."2345678".split("").map((b) => `uint${b}`),
  "uint16",
  "fp8_e4m3fn",
  "fp8_e5m2",
  "fp6_e3m2fn",
  "fp6_e2m3fn",
  "fp4_e2m1fn",
  "e8m0",
  "mxfp8_e4m3",
  "mxfp8_e5m2",
  "mxfp6_e3m2",
  "mxfp6_e2m3",
  "mxfp4",
  "mxint8",
  "nvfp4",
  "ternary",
  "binary",
  "ptqtp",
  "nupes4",
  "nupes8",
];

Deno.test("builtinFormats() registers every required name once", () => {
  const names = builtinFormats().map((f) => f.name);
  for (const n of REQUIRED) assert.ok(names.includes(n), n);
  assert.equal(new Set(names).size, names.length);
  const r = createRegistry(parseFormatName);
  for (const f of builtinFormats()) r.formats.register(f);
  assert.equal(r.formats.list().length, names.length);
});

Deno.test("every format's values() is ascending, distinct and inside [min, max]", () => {
  for (const f of builtinFormats()) {
    const v = f.values();
    for (let i = 1; i < v.length; i++) assert.ok(v[i] > v[i - 1], f.name);
    assert.equal(v[v.length - 1], f.max, f.name);
    assert.equal(v[0], f.min, f.name);
  }
});

Deno.test("parseFormatName() builds parametric integers and minifloats", () => {
  assert.deepEqual([parseFormatName("int5")!.min, parseFormatName("int5")!.max], [-16, 15]);
  assert.equal(parseFormatName("uint3")!.max, 7);
  assert.equal(parseFormatName("uint1")!.max, 1);
  const e3m4 = parseFormatName("fp_e3m4") as MinifloatFormat;
  assert.deepEqual([e3m4.max, e3m4.hasInf, e3m4.bits], [15.5, true, 8]);
  const e2m5 = parseFormatName("fp_e2m5fn") as MinifloatFormat;
  assert.deepEqual([e2m5.max, e2m5.hasNaN, e2m5.hasInf], [
    7.75, // S.11.11110 = (1 + 30/32) · 2^2
    true,
    false,
  ]);
  const small = parseFormatName("fp_e2m2fn") as MinifloatFormat;
  assert.deepEqual([small.max, small.hasNaN], [7, false]);
  assert.equal(parseFormatName("fp8_e4m3")!.max, 240);
  assert.equal(parseFormatName("fp_e4m3fn_b11")!.max, 448 / 16);
  assert.equal(parseFormatName("fp_e4m3fn")!.max, 448);
  assert.equal(parseFormatName("fp_e2m1fn")!.max, 6);
  assert.equal(parseFormatName("nupes3")!.bits, 3);
  assert.equal(parseFormatName("ptqtp_g64")!.name, "ptqtp_g64");
  assert.equal(parseFormatName("mxfp3"), undefined);
  assert.equal(parseFormatName(""), undefined);
});

Deno.test("getFormat() resolves parametric names and lists registered ones for unknown names", () => {
  assert.equal(getFormat("int5").max, 15);
  assert.equal(getFormat("fp_e3m4").name, "fp_e3m4");
  assert.throws(
    () => getFormat("fp9_e9m9z"),
    (e: unknown) =>
      e instanceof LowbitError && e.code === "UNKNOWN_NAME" && e.message.includes("fp8_e4m3fn") &&
      e.message.includes("mxfp4"),
  );
  assert.throws(() => getFormat("fp_e9m3"), /exponent bits must be 1\.\.8/);
});

import assert from "node:assert/strict";
import { effectiveGroupSize, getPreset, presetNames } from "./presets.ts";

Deno.test("presetNames() lists every preset of the issue", () => {
  assert.deepEqual(presetNames(), [
    "w8a8",
    "w4a8",
    "w4a16",
    "w8a4",
    "w4a4",
    "fp8",
    "mxfp8",
    "mxfp4",
    "nvfp4",
    "mixed",
  ]);
});

Deno.test("getPreset() returns copies and rejects unknown names", () => {
  const a = getPreset("w8a8");
  a.base.weight!.format = "int2";
  assert.deepEqual(getPreset("w8a8").base.weight?.format, "int8");
  assert.deepEqual(getPreset("w8a8").base.weight?.granularity, "channel");
  assert.deepEqual(getPreset("w8a8").base.activation?.granularity, "tensor");
  assert.deepEqual(getPreset("w4a16").base.weight?.granularity, { group: 128 });
  assert.deepEqual(getPreset("fp8").base.weight?.format, "fp8_e4m3fn");
  assert.throws(() => getPreset("w3a3"), /presets: w8a8/);
});

Deno.test("effectiveGroupSize() shrinks groups to a divisor of small axes", () => {
  assert.deepEqual(effectiveGroupSize(4096, 128), 128);
  assert.deepEqual(effectiveGroupSize(64, 128), 64);
  assert.deepEqual(effectiveGroupSize(144, 128), 72);
  assert.deepEqual(effectiveGroupSize(7, 4), 1);
  assert.deepEqual(effectiveGroupSize(1, 128), 1);
});

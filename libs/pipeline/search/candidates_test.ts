import assert from "node:assert/strict";
import { bops, LowbitError, sizeBits } from "@lowbit/core";
import {
  candidateCost,
  pairCandidates,
  parseActivationFormat,
  parseCandidate,
} from "./candidates.ts";
import { kernelFor, latencyKey } from "./latency.ts";
import { parseMixedOptions } from "./hook.ts";
import { fcLayer as fc } from "../_testdata.ts";

Deno.test("parseCandidate() reads weight@activation pairs; no @ means int8 inputs", () => {
  const a = parseCandidate("int4/group:16@fp8_e4m3fn");
  assert.equal(a.weightName, "int4/group:16");
  assert.deepEqual(a.spec.granularity, { group: 16 });
  assert.equal(a.activationFormat, "fp8_e4m3fn");
  assert.deepEqual(a.activation, {
    format: "fp8_e4m3fn",
    granularity: "tensor",
    mode: "symmetric",
    calibrator: "minmax",
  });
  assert.equal(a.activationBits, 8);
  const b = parseCandidate("mxfp4@none");
  assert.equal(b.activation, null);
  assert.equal(b.activationBits, 32);
  const c = parseCandidate("int8/channel");
  assert.equal(c.activationFormat, "int8");
  assert.equal(c.activation?.mode, "affine");
  assert.equal(c.name, c.weightName);
});

Deno.test("parseCandidate() and parseMixedOptions() name the bad token", () => {
  const bad: [string, RegExp][] = [
    ["int4/channel@int9x", /candidate 'int4\/channel@int9x': unknown activation format 'int9x'/],
    ["int4/channel@", /candidate 'int4\/channel@': empty activation format/],
    ["int4/channel@int8@none", /candidate 'int4\/channel@int8@none': one '@' at most/],
    [
      "int4/channel@mxfp4",
      /candidate 'int4\/channel@mxfp4': activation format 'mxfp4' cannot be searched/,
    ],
    ["foo/channel@int8", /candidate 'foo\/channel@int8': unknown weight format 'foo'/],
    ["int4/rows@int8", /candidate 'int4\/rows@int8': bad granularity "rows"/],
  ];
  for (const [name, re] of bad) {
    assert.throws(() => parseCandidate(name), (e: unknown) => {
      assert.ok(e instanceof LowbitError, name);
      assert.match(e.message, re);
      return true;
    });
  }
  assert.throws(
    () => parseMixedOptions({ budget: "4bits", "act-formats": "int8,fp9,none" }),
    /--act-formats 'int8,fp9,none': unknown activation format 'fp9'/,
  );
  assert.throws(
    () => parseMixedOptions({ budget: "4bits", "act-formats": "int8,,none" }),
    /--act-formats 'int8,,none': empty format at position 2/,
  );
  assert.deepEqual(
    parseMixedOptions({ budget: "4bits", "act-formats": "int8, fp8_e4m3fn ,none" })
      .activationFormats,
    ["int8", "fp8_e4m3fn", "none"],
  );
  assert.equal(parseMixedOptions({ budget: "4bits" }).activationFormats, undefined);
});

Deno.test("pairCandidates() crosses weights with activation formats; int8 alone keeps the names", () => {
  assert.deepEqual(pairCandidates(["int8/channel", "mxfp4"]), ["int8/channel", "mxfp4"]);
  assert.deepEqual(pairCandidates(["int8/channel", "mxfp4"], ["int8", "none"]), [
    "int8/channel@int8",
    "int8/channel@none",
    "mxfp4@int8",
    "mxfp4@none",
  ]);
  // explicit pairs stay as written
  assert.deepEqual(pairCandidates(["int4/channel@none", "int8/channel"], ["fp8_e4m3fn"]), [
    "int4/channel@none",
    "int8/channel@fp8_e4m3fn",
  ]);
  assert.throws(() => pairCandidates(["int8/channel"], []), /no activation formats/);
  assert.throws(() => pairCandidates(["int8/channel"], ["int8", "bogus"]), /'bogus'/);
  assert.equal(parseActivationFormat("none"), null);
});

Deno.test("candidateCost(): size ignores the activation format, BOPs = weight bits × activation bits × MACs", () => {
  // fc: 10 × 32 weights, one output position per sample: 320 MACs.
  const geo = { params: 320, outChannels: 10, macs: 320, shapeKey: "k" };
  const cost = (name: string) => candidateCost(fc, parseCandidate(name));
  for (const a of ["int8", "fp8_e4m3fn", "none"]) {
    // int4 per channel: 320 × 4 bits + 10 float32 scales, whatever the inputs
    assert.equal(sizeBits(geo, cost(`int4/channel@${a}`)), 320 * 4 + 10 * 32);
  }
  assert.equal(bops(geo, cost("int4/channel@int8")), 320 * 4 * 8); // 10240
  assert.equal(bops(geo, cost("int4/channel@fp8_e4m3fn")), 320 * 4 * 8);
  assert.equal(bops(geo, cost("int4/channel@none")), 320 * 4 * 32); // 40960
  assert.equal(bops(geo, cost("mxfp4@none")), 320 * 4 * 32);
  assert.equal(bops(geo, cost("int8/channel@int4")), 320 * 8 * 4);
  assert.equal(bops(geo, cost("int8/channel")), 320 * 8 * 8);
});

Deno.test("kernelFor() and latencyKey(): integer kernels need integer inputs; float inputs run the f32 kernel", () => {
  assert.equal(kernelFor("int8", "int8"), "s8");
  assert.equal(kernelFor("int4", "int8"), "s4");
  assert.equal(kernelFor("int4", "none"), "f32");
  assert.equal(kernelFor("int8", "fp8_e4m3fn"), "f32");
  assert.equal(kernelFor("fp8_e4m3fn", "none"), "minifloat");
  assert.equal(kernelFor("nvfp4", "int8"), "minifloat");
  assert.equal(latencyKey(parseCandidate("int4/group:16")), "int4");
  assert.equal(latencyKey(parseCandidate("int4/group:16@int8")), "int4");
  assert.equal(latencyKey(parseCandidate("int4/group:16@none")), "int4@none");
  assert.equal(
    latencyKey(parseCandidate("fp8_e4m3fn/channel@fp8_e4m3fn")),
    "fp8_e4m3fn@fp8_e4m3fn",
  );
});

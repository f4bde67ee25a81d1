import assert from "node:assert/strict";
import { applyRules, globToRegExp, parseRules } from "./rules.ts";
import type { LayerConfig } from "./spec.ts";

const base: LayerConfig = {
  skip: false,
  weight: { format: "int8", granularity: "channel", mode: "symmetric", rounding: "rtn" },
  activation: { format: "int8", granularity: "tensor", mode: "affine", calibrator: "minmax" },
};

Deno.test("globToRegExp() matches * and ? and escapes the rest", () => {
  assert.deepEqual(globToRegExp("blocks.*.attn").test("blocks.0.attn"), true);
  assert.deepEqual(globToRegExp("blocks.*.attn").test("blocksX0.attnY"), false);
  assert.deepEqual(globToRegExp("fc?").test("fc1"), true);
  assert.deepEqual(globToRegExp("fc?").test("fc"), false);
  assert.deepEqual(globToRegExp("/model/conv(1)").test("/model/conv(1)"), true);
});

Deno.test("applyRules() lets later rules override earlier ones", () => {
  const { configs, warnings } = applyRules(["conv1", "conv2", "fc"], base, [
    { match: "*", weight: { format: "int4", granularity: { group: 32 } } },
    { match: "conv*", weight: { format: "int8" } },
    { match: "conv2", skip: true },
    { match: "conv2", skip: false, activation: null },
  ]);
  assert.deepEqual(warnings, []);
  assert.deepEqual(configs.fc.weight?.format, "int4");
  assert.deepEqual(configs.conv1.weight?.format, "int8");
  // conv1 keeps the group granularity from rule 1: rules merge field by field.
  assert.deepEqual(configs.conv1.weight?.granularity, { group: 32 });
  assert.deepEqual(configs.conv2.skip, false);
  assert.deepEqual(configs.conv2.activation, null);
  assert.deepEqual(configs.conv1.activation?.format, "int8");
});

Deno.test("applyRules() warns about a rule that matches nothing, naming it", () => {
  const { warnings } = applyRules(["fc"], base, [{ match: "encoder.*", skip: true }]);
  assert.deepEqual(warnings.length, 1);
  assert.deepEqual(warnings[0].includes("'encoder.*'"), true);
});

Deno.test("applyRules() needs a full spec to turn float tensors back on", () => {
  const floatAct = { ...base, activation: null };
  assert.throws(() =>
    applyRules(["fc"], floatAct, [{ match: "fc", activation: { format: "int8" } }])
  );
  const { configs } = applyRules(["fc"], floatAct, [
    { match: "fc", activation: { format: "int8", granularity: "tensor", mode: "affine" } },
  ]);
  assert.deepEqual(configs.fc.activation?.format, "int8");
});

Deno.test("parseRules() accepts arrays and {rules} and rejects bad fields", () => {
  assert.deepEqual(parseRules({ rules: [{ match: "a", skip: true }] }), [{
    match: "a",
    skip: true,
  }]);
  assert.deepEqual(parseRules([{ match: "a", weight: "float" }]), [{ match: "a", weight: null }]);
  assert.deepEqual(parseRules([{ match: "a", weight: { granularity: "group:64" } }]), [
    { match: "a", weight: { granularity: { group: 64 } } },
  ]);
  assert.throws(() => parseRules({}), /JSON array/);
  assert.throws(() => parseRules([{ match: "a", wieght: {} }]), /unknown field 'wieght'/);
  assert.throws(() => parseRules([{ match: "a", weight: { mode: "asym" } }]), /mode/);
  assert.throws(() => parseRules([{ skip: true }]), /"match"/);
  assert.throws(() => parseRules([{ match: "a", weight: { granularity: "row" } }]), /granularity/);
});

import assert from "node:assert/strict";
import { digitsCalib, digitsModel } from "./_testdata.ts";
import { parsePlan, validatePlan } from "./plan.ts";
import { quantize } from "./quantize.ts";

Deno.test("parsePlan() names what is wrong with a malformed plan", () => {
  assert.throws(() => parsePlan([]), /expected a JSON object/);
  assert.throws(() => parsePlan({ version: 9, entries: [] }), /version 9/);
  assert.throws(
    () => parsePlan({ version: 1, entries: [{ node: "a", value: "b", role: "bias" }] }),
    /role/,
  );
  assert.throws(
    () =>
      parsePlan({
        version: 1,
        entries: [{ node: "a", value: "b", role: "weight", format: "int8" }],
      }),
    /granularity/,
  );
});

Deno.test("validatePlan() rejects plans that do not fit the model, naming the node", async () => {
  const mlp = await digitsModel("mlp");
  const { quantized } = await quantize({ model: mlp, calib: await digitsCalib() });
  const plan = quantized.plan;
  assert.deepEqual(validatePlan(plan, mlp, plan.model.sha256).warnings, []);
  const w = plan.entries.find((e) => e.role === "weight")!;
  const bad = (patch: object) => ({
    ...plan,
    entries: plan.entries.map((e) => e === w ? { ...e, ...patch } : e),
  });
  assert.throws(() => validatePlan(bad({ node: "nope" }), mlp, ""), /node 'nope'.*no such node/);
  assert.throws(() => validatePlan(bad({ value: "other" }), mlp, ""), /weight is 'other'/);
  assert.throws(() => validatePlan(bad({ scale: [1, 2, 3] }), mlp, ""), /3 weight scales/);
  assert.throws(
    () => validatePlan(bad({ granularity: { kind: "group", axis: 1, size: 7 } }), mlp, ""),
    /group size 7 does not divide/,
  );
  assert.throws(
    () => validatePlan(bad({ format: "int99" }), mlp, "", () => false),
    /unknown format/,
  );
  const cnn = await digitsModel("cnn");
  assert.throws(() => validatePlan(plan, cnn, ""), /no such node/);
  assert.match(
    validatePlan({ ...plan, model: { ...plan.model, sha256: "x" } }, mlp, "y").warnings[0],
    /different model/,
  );
});

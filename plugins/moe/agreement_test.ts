// Routing agreement against a hand-derived case: a copy of the router whose bias favours expert 0
// by +1000 sends every token there, so it agrees with the float model exactly on the tokens the
// float model routes to expert 0 (153 of 497, PROVENANCE.md) and on no other.
import assert from "node:assert/strict";
import { readNpy, readOnnxFile } from "@lowbit/graph";
import { detectMoE, routingAgreement } from "./mod.ts";

const DIR = new URL("../../fixtures/", import.meta.url);

Deno.test("routingAgreement per router and per expert, against a router forced to expert 0", async () => {
  const model = await readOnnxFile(new URL("moe/moe_sparse.onnx", DIR).pathname);
  const x = readNpy(Deno.readFileSync(new URL("digits/eval_x.npy", DIR)));
  const bias = model.graph.initializers.get("router.bias")!;
  const forced = Float32Array.from(bias.data as Float32Array);
  forced[0] += 1000;
  const inits = new Map(model.graph.initializers);
  inits.set("router.bias", { ...bias, data: forced });
  const other = { ...model, graph: { ...model.graph, initializers: inits } };
  const [r] = await routingAgreement(model, other, detectMoE(model.graph), { x }, {
    batchSize: 200,
  });
  assert.equal(r.tokens, 497);
  assert.equal(r.agreement, 153 / 497);
  assert.deepEqual(r.experts.map((e) => e.floatTokens), [153, 148, 104, 92]);
  assert.deepEqual(r.experts.map((e) => e.quantTokens), [497, 0, 0, 0]);
  assert.deepEqual(r.experts.map((e) => e.agreement), [1, 0, 0, 0]);
});

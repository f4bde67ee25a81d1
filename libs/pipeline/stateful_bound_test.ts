import assert from "node:assert/strict";
import { type Model, modelOf, nodeOf as node, type TensorData } from "@lowbit/graph";
import { defaultMaxDelta, STATEFUL_MAX_DELTA } from "./stateful_bound.ts";

const v = (name: string) => ({ name, dtype: "float32" as const, shape: ["n", 1] });
const f = (...a: number[]): TensorData => ({
  dtype: "float32",
  shape: [a.length, 1],
  data: Float32Array.from(a),
});

/** y = act(x + h), hn = x + h (`act` null: y = x + h); outputs named as given. */
function model(act: string | null, outputs = ["y", "hn"]): Model {
  const nodes = [node("a", "Add", ["x", "h"], ["s"])];
  nodes.push(
    act ? node("b", act, ["s"], [outputs[0]]) : node("b", "Identity", ["s"], [outputs[0]]),
  );
  nodes.push(node("c", "Identity", ["s"], [outputs[1]]));
  return modelOf({ inputs: [v("x"), v("h")], outputs: outputs.map(v), nodes });
}

Deno.test("defaultMaxDelta: a stateful model with a probability output gets 0.01", async () => {
  // Sigmoid of x + h: (1, 0) → 0.73, (-3, 0.5) → 0.076: within [0, 1].
  const d = await defaultMaxDelta(model("Sigmoid"), {
    inputs: { x: f(1, -3), h: f(0, 0.5) },
    count: 2,
  });
  assert.equal(d.bound, STATEFUL_MAX_DELTA);
  assert.equal(STATEFUL_MAX_DELTA, 0.01);
  assert.match(d.reason, /h → hn/);
  assert.match(d.reason, /'y' is a probability/);
  // Exactly 0 and 1 are probabilities too (Relu of 0; x + h = 1 with Identity).
  const edge = await defaultMaxDelta(model(null), { inputs: { x: f(0, 1), h: f(0, 0) }, count: 2 });
  assert.equal(edge.bound, 0.01);
});

Deno.test("defaultMaxDelta: no bound for an unbounded output, NaN, no state or no state data", async () => {
  // x + h = 1.5 on the second sample: not a probability.
  const big = await defaultMaxDelta(model(null), {
    inputs: { x: f(0.2, 1), h: f(0, 0.5) },
    count: 2,
  });
  assert.equal(big.bound, null);
  assert.match(big.reason, /'y' is not within \[0, 1\]/);
  // Only the first 1 sample run: 0.2 is within [0, 1].
  const first = await defaultMaxDelta(model(null), {
    inputs: { x: f(0.2, 1), h: f(0, 0.5) },
    count: 2,
  }, { samples: 1 });
  assert.equal(first.bound, 0.01);
  // A negative output (Tanh of -1).
  const neg = await defaultMaxDelta(model("Tanh"), { inputs: { x: f(-1), h: f(0) }, count: 1 });
  assert.equal(neg.bound, null);
  // NaN (sqrt of -1) is not a probability.
  const nan = await defaultMaxDelta(model("Sqrt"), { inputs: { x: f(-1), h: f(0) }, count: 1 });
  assert.equal(nan.bound, null);
  // No state pair: the second output's name does not start with an input's name.
  const stateless = await defaultMaxDelta(model("Sigmoid", ["y", "z"]), {
    inputs: { x: f(1), h: f(0) },
    count: 1,
  });
  assert.equal(stateless.bound, null);
  assert.match(stateless.reason, /no state input/);
  // The state pair exists but the data has no state: nothing to run closed loop.
  const noState = await defaultMaxDelta(model("Sigmoid"), { inputs: { x: f(1) }, count: 1 });
  assert.equal(noState.bound, null);
  // A state given whole (one value for every sample) counts.
  const whole = await defaultMaxDelta(model("Sigmoid"), {
    inputs: { x: f(1, 2) },
    whole: { h: { dtype: "float32", shape: [1, 1], data: Float32Array.of(0) } },
    count: 2,
  });
  assert.equal(whole.bound, 0.01);
});

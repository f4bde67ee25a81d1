import assert from "node:assert/strict";
import { type Model, modelOf } from "@lowbit/graph";
import { closedLoop, statePairs } from "./stateful.ts";

/** y = x + h + extra, hn = y: a running sum (the float model has extra 0). */
function runningSum(extra: number): Model {
  const v = (name: string) => ({ name, dtype: "float32" as const, shape: ["n", 1] });
  return modelOf({
    inputs: [v("x"), v("h")],
    outputs: [v("y"), v("hn")],
    initializers: { e: { dtype: "float32", shape: [1], data: Float32Array.of(extra) } },
    nodes: [
      { name: "a", op: "Add", domain: "", inputs: ["x", "h"], outputs: ["s"], attrs: {} },
      { name: "b", op: "Add", domain: "", inputs: ["s", "e"], outputs: ["y"], attrs: {} },
      { name: "c", op: "Identity", domain: "", inputs: ["y"], outputs: ["hn"], attrs: {} },
    ],
  });
}

const f = (...a: number[]) => ({
  dtype: "float32" as const,
  shape: [a.length, 1],
  data: Float32Array.from(a),
});

Deno.test("closedLoop() splits the data into streams where the state does not follow", async () => {
  // Frames: (x 1, h 0) (x 1, h 1) | (x 2, h 0) (x 1, h 2): the float model writes 1, 2 | 2, 3;
  // frame 2's state 0 is not the 2 written before it, so a second stream starts there.
  const data = { inputs: { x: f(1, 1, 2, 1), h: f(0, 1, 0, 2) }, count: 4 };
  const r = await closedLoop(runningSum(0), runningSum(0.5), data);
  // Each stream's error grows by 0.5 a frame: 0.5, 1 and 0.5, 1.
  // SQNR: float outputs 1, 2, 2, 3 (Σ² = 18), errors 0.5, 1, 0.5, 1 (Σ² = 2.5).
  assert.deepEqual(r, {
    streams: 2,
    frames: 4,
    maxAbs: 1,
    meanAbs: 0.75,
    sqnrDb: 10 * Math.log10(18 / 2.5),
  });
  // Without the state pairs every frame runs on its given state: 0.5 each.
  const open = await closedLoop(runningSum(0), runningSum(0.5), data, { pairs: [] });
  assert.deepEqual(open, {
    streams: 4,
    frames: 4,
    maxAbs: 0.5,
    meanAbs: 0.5,
    sqnrDb: 10 * Math.log10(18 / 1),
  });
});

Deno.test("statePairs() pairs inputs with the outputs named after them, not the first output", () => {
  const m = runningSum(0);
  assert.deepEqual(statePairs(m), [{ input: "h", output: "hn" }]);
  // An output named like an input but of another dtype is not its state.
  m.graph.outputs[1] = { ...m.graph.outputs[1], dtype: "int64" };
  assert.deepEqual(statePairs(m), []);
});

// A marker's point on a graph output that no node reads is left in float (a plan entry that says
// so): quantizing it would change only the model's output (a headless ViT's final LayerNorm, as
// `--plugin vit` marks it, came out with 250 distinct values instead of float features). A marked
// graph output that a node reads stays a point, and its readers and the output see it quantized.
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins, type Registry } from "@lowbit/core";
import { createExecutor, modelOf, nodeOf, type TensorData } from "@lowbit/graph";
import { quantize } from "./quantize.ts";
import { runnableModel } from "./simulate.ts";

const f32 = (shape: number[], data: number[]): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(data),
});

/** g = x·Wᵀ, h = Relu(g) (an output read by the Mul), y = 0.3·h (an output nothing reads). */
const model = modelOf({
  nodes: [
    nodeOf("fc", "Gemm", ["x", "W"], ["g"], { transB: { kind: "int", value: 1 } }),
    nodeOf("relu", "Relu", ["g"], ["h"]),
    nodeOf("scale", "Mul", ["h", "k"], ["y"]),
  ],
  inputs: [{ name: "x", dtype: "float32", shape: ["n", 2] }],
  outputs: [{ name: "h", dtype: "float32" }, { name: "y", dtype: "float32" }],
  initializers: [["W", f32([2, 2], [1, -0.5, 0.25, 1])], ["k", f32([], [0.3])]],
});

function registry(): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  r.use({
    name: "outputs",
    version: "0.1.0",
    register: (reg) =>
      reg.markers.register({ name: "mark-hy", mark: () => [{ value: "h" }, { value: "y" }] }),
  });
  return r;
}

Deno.test("a marked graph output that no node reads stays float; one a node reads is quantized", async () => {
  const xs: number[] = [];
  for (let i = 0; i < 64; i++) xs.push(Math.sin(i * 0.7) * 3, Math.cos(i * 1.3) * 2);
  const x = f32([64, 2], xs);
  const { quantized, warnings } = await quantize({
    model,
    calib: { inputs: { x }, count: 64 },
    preset: "w8a8",
    registry: registry(),
  });
  const entry = (v: string) =>
    quantized.plan.entries.find((e) => e.value === v && e.role === "activation")!;
  assert.equal(entry("y").skip, true, JSON.stringify(entry("y")));
  assert.match(entry("y").reason ?? "", /graph output no node reads/);
  assert.ok(!entry("h").skip && entry("h").format === "int8", JSON.stringify(entry("h")));
  assert.ok(warnings.every((w) => !/'mark-hy' found nothing/.test(w)));
  // The quantized model's h is on h's int8 grid: its distinct values are whole steps of the scale.
  const out = await createExecutor(runnableModel(quantized), { registry: quantized.registry })
    .run({ x });
  const h = out.h.data as Float32Array, y = out.y.data as Float32Array;
  const s = entry("h").scale![0];
  for (const v of h) assert.ok(Math.abs(v / s - Math.round(v / s)) < 1e-3, `h ${v} off the grid`);
  // y is 0.3 times that h, not requantized: float32 products, element by element.
  assert.deepEqual([...y], [...h].map((v) => Math.fround(v * Math.fround(0.3))));
});

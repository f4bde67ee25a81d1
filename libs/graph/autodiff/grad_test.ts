import assert from "node:assert/strict";
import { createRng, LowbitError } from "@lowbit/core";
import { readOnnxFile } from "../onnx_file.ts";
import { readNpy } from "../npy.ts";
import { lossAndGrad, lossOnly, type LossProblem } from "./grad.ts";
import { softmaxRows } from "./loss.ts";
import { forward64, toT64 } from "./tape.ts";
import type { T64 } from "./ops.ts";

const ROOT = new URL("../../../fixtures/digits/", import.meta.url);

for (const name of ["mlp", "cnn", "vit"]) {
  Deno.test(`lossAndGrad() matches central differences on the digits ${name} (every weight tensor)`, async () => {
    const model = await readOnnxFile(new URL(`${name}.onnx`, ROOT).pathname);
    const x = toT64(readNpy(await Deno.readFile(new URL("calib_x.npy", ROOT))));
    const feeds = { x: { shape: [4, 1, 8, 8], data: x.data.slice(0, 4 * 64) } };
    const logits = forward64(model.graph, feeds).values.get("logits")!;
    // Both losses: cross-entropy with labels, and KL to slightly sharpened float outputs (non-zero gradient).
    const sharp: T64 = softmaxRows({ shape: logits.shape, data: logits.data.map((v) => 1.5 * v) });
    for (
      const problem of [
        {
          graph: model.graph,
          feeds,
          loss: { kind: "cross-entropy" as const, labels: [0, 3, 5, 9] },
        },
        { graph: model.graph, feeds, loss: { kind: "kl" as const, target: sharp } },
      ] satisfies LossProblem[]
    ) {
      const names = [...model.graph.initializers.keys()].filter((k) =>
        model.graph.initializers.get(k)!.dtype === "float32"
      );
      const { grads } = lossAndGrad(problem, names);
      const rng = createRng(5);
      for (const w of names) {
        const base = toT64(model.graph.initializers.get(w)!);
        for (let t = 0; t < 3; t++) {
          const i = rng.int(base.data.length), h = 1e-6;
          const at = (d: number): number => {
            const data = base.data.slice();
            data[i] += d;
            return lossOnly(problem, new Map([[w, { shape: base.shape, data }]]));
          };
          const [up, mid, dn] = [at(h), at(0), at(-h)];
          // NOTE: a ReLU kink may lie within h on one side (it does for cnn stem.weight[106] at
          // 1e-6 below); the one-sided difference on the smooth side then still agrees.
          const fds = [(up - dn) / (2 * h), (up - mid) / h, (mid - dn) / h];
          const g = grads.get(w)!.data[i];
          const err = Math.min(...fds.map((fd) => Math.abs(fd - g) / (1e-4 + Math.abs(fd))));
          assert.ok(
            err <= 1e-4,
            `${name} ${problem.loss.kind} ${w}[${i}]: analytic ${g} vs differences ${fds}`,
          );
        }
      }
    }
  });
}

Deno.test("forward64(): an unsupported op is a LowbitError naming the node", () => {
  const g = {
    name: "g",
    inputs: [{ name: "x", dtype: "float32" as const }],
    outputs: [{ name: "y", dtype: "float32" as const }],
    nodes: [{
      name: "nms_1",
      op: "NoSuchOp",
      domain: "",
      inputs: ["x"],
      outputs: ["y"],
      attrs: {},
    }],
    initializers: new Map(),
    valueInfo: new Map(),
  };
  assert.throws(
    () => forward64(g, { x: { shape: [1], data: Float64Array.of(1) } }),
    (e: unknown) =>
      e instanceof LowbitError && e.code === "UNSUPPORTED" &&
      e.message === "node 'nms_1': autodiff: op NoSuchOp is not supported",
  );
});

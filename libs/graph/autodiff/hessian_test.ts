import assert from "node:assert/strict";
import { createRng } from "@lowbit/core";
import { readOnnxFile } from "../onnx_file.ts";
import { readNpy } from "../npy.ts";
import { hutchinsonTrace, hutchinsonTraces, topEigenvalue } from "./hessian.ts";
import { lossOnly, type LossProblem } from "./grad.ts";
import { toT64 } from "./tape.ts";

const ROOT = new URL("../../../fixtures/digits/", import.meta.url);

interface Reference {
  labels: number[];
  loss_value: number;
  layers: Record<string, { trace: number; top_eigenvalue: number }>;
}

async function mlpProblem(): Promise<{ problem: LossProblem; ref: Reference }> {
  const ref = JSON.parse(await Deno.readTextFile(new URL("mlp_hessian.json", ROOT))) as Reference;
  const model = await readOnnxFile(new URL("mlp.onnx", ROOT).pathname);
  const x = toT64(readNpy(await Deno.readFile(new URL("calib_x.npy", ROOT)), "calib_x.npy"));
  const n = ref.labels.length, per = x.data.length / x.shape[0];
  const feeds = { x: { shape: [n, ...x.shape.slice(1)], data: x.data.slice(0, n * per) } };
  return {
    problem: { graph: model.graph, feeds, loss: { kind: "cross-entropy", labels: ref.labels } },
    ref,
  };
}

Deno.test("lossOnly() reproduces torch's MLP cross-entropy", async () => {
  const { problem, ref } = await mlpProblem();
  assert.ok(Math.abs(lossOnly(problem) - ref.loss_value) < 1e-6 * ref.loss_value);
});

Deno.test("hutchinsonTrace() is within 5% of the exact per-layer Hessian trace of the MLP", async () => {
  const { problem, ref } = await mlpProblem();
  for (const [name, exact] of Object.entries(ref.layers)) {
    const est = hutchinsonTrace(problem, name, {
      rng: createRng(7),
      relTol: 0.015,
      maxProbes: 400,
    });
    const rel = Math.abs(est.trace - exact.trace) / exact.trace;
    assert.ok(
      rel < 0.05,
      `${name}: Hutchinson ${est.trace} vs exact ${exact.trace} (${est.probes} probes)`,
    );
  }
});

Deno.test("topEigenvalue() is within 2% of the exact top eigenvalue per MLP layer", async () => {
  const { problem, ref } = await mlpProblem();
  for (const [name, exact] of Object.entries(ref.layers)) {
    const est = topEigenvalue(problem, name, { rng: createRng(3) });
    const rel = Math.abs(est.value - exact.top_eigenvalue) / exact.top_eigenvalue;
    assert.ok(rel < 0.02, `${name}: power iteration ${est.value} vs exact ${exact.top_eigenvalue}`);
  }
});

Deno.test("hutchinsonTraces() (all layers per probe) is unbiased: within 4 standard errors of exact", async () => {
  const { problem, ref } = await mlpProblem();
  const est = hutchinsonTraces(problem, Object.keys(ref.layers), 48, createRng(11));
  for (const [name, exact] of Object.entries(ref.layers)) {
    const e = est[name];
    assert.ok(
      Math.abs(e.trace - exact.trace) < 4 * e.stderr,
      `${name}: ${e.trace} ± ${e.stderr} vs ${exact.trace}`,
    );
  }
});

import assert from "node:assert/strict";
import { runCli } from "../main.ts";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await runCli(args), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("inspect lists inputs, operators, layers and why attention MatMuls are not layers", async () => {
  const r = await cli(["inspect", "fixtures/digits/vit.onnx", "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(j.inputs[0].name, "x");
  assert.equal(j.ops.Softmax, 2);
  assert.equal(j.layers.length, 14);
  assert.equal(j.notQuantizable.length, 4);
  assert.equal(j.params, 18154);
  const text = await cli(["inspect", "fixtures/digits/cnn.onnx"]);
  assert.match(text.out, /quantizable layers \(7\)/);
});

Deno.test("inspect, eval and report give exit code 2 for bad input", async () => {
  assert.equal((await cli(["inspect", "no/such/model.onnx"])).code, 2);
  assert.equal((await cli(["inspect", "--bogus"])).code, 2);
  assert.equal((await cli(["eval", "fixtures/digits/mlp.onnx"])).code, 2);
  assert.equal(
    (await cli([
      "eval",
      "fixtures/digits/mlp.onnx",
      "fixtures/digits/mlp.onnx",
      "--data",
      "fixtures/digits/eval_y.npy",
    ]))
      .code,
    2,
  );
  assert.equal((await cli(["report", "fixtures/digits/PROVENANCE.md"])).code, 2);
});

Deno.test("eval compares a model with itself: perfect agreement, infinite SQNR", async () => {
  const r = await cli([
    "eval",
    "fixtures/digits/mlp.onnx",
    "fixtures/digits/mlp.onnx",
    "--data",
    "fixtures/digits/eval_x.npy",
    "--labels",
    "fixtures/digits/eval_y.npy",
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out.replace(/Infinity/g, "1e999"));
  assert.equal(j.top1_agreement, 1);
  assert.equal(j.top1_float, j.top1_quant);
});

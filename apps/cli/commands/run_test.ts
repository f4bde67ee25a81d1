import assert from "node:assert/strict";
import { dequantizeAffine, fitQParams, quantizeAffine } from "@lowbit/core";
import {
  createExecutor,
  type LowbitTensor,
  readNpy,
  readOnnxFile,
  writeLowbitFile,
  writeNpy,
} from "@lowbit/graph";
import { runCli } from "../main.ts";
import { assignNames, runModelFiles } from "./run.ts";

const MLP = new URL("../../../fixtures/digits/mlp.onnx", import.meta.url).pathname;
const EVAL_X = new URL("../../../fixtures/digits/eval_x.npy", import.meta.url).pathname;

Deno.test("assignNames() pairs named and positional arguments", () => {
  const m = assignNames(["b=y.npy", "x.npy"], ["a", "b"], "input");
  assert.deepEqual([...m], [["b", "y.npy"], ["a", "x.npy"]]);
  assert.throws(() => assignNames(["a.npy", "b.npy"], ["x"], "input"));
  // "=" in a path that is not a value name stays part of the path.
  assert.deepEqual([...assignNames(["dir=1/x.npy"], ["x"], "input")], [["x", "dir=1/x.npy"]]);
});

Deno.test("lowbit run writes the executor's outputs as .npy", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/logits.npy`;
    assert.equal(await runCli(["run", MLP, "--input", EVAL_X, "--out", `logits=${out}`]), 0);
    const got = readNpy(await Deno.readFile(out));
    const x = readNpy(await Deno.readFile(EVAL_X));
    const want = (await createExecutor(await readOnnxFile(MLP)).run({ x })).logits;
    assert.deepEqual(got.shape, want.shape);
    assert.deepEqual(got.data, want.data);
    // No temporary file is left behind.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["logits.npy"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lowbit run --threads 2 writes one thread's bits; a bad count is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const one = `${dir}/one.npy`, two = `${dir}/two.npy`;
    assert.equal(await runCli(["run", MLP, "--input", EVAL_X, "--out", one]), 0);
    assert.equal(await runCli(["run", MLP, "--input", EVAL_X, "--out", two, "--threads", "2"]), 0);
    assert.deepEqual(
      readNpy(await Deno.readFile(two)).data,
      readNpy(await Deno.readFile(one)).data,
    );
    assert.equal(await runCli(["run", MLP, "--input", EVAL_X, "--threads", "0"]), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lowbit run reports a wrong input shape naming the input", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = `${dir}/bad.npy`;
    await Deno.writeFile(
      bad,
      writeNpy({ dtype: "float32", shape: [2, 64], data: new Float32Array(128) }),
    );
    assert.equal(await runCli(["run", MLP, "--input", bad, "--out", `${dir}/y.npy`]), 2);
    await assert.rejects(
      runModelFiles(MLP, [bad], [`${dir}/y.npy`]),
      (e: unknown) => e instanceof Error && e.message.includes("tensor 'x'"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const format of ["int8", "fp8_e4m3fn", "int4"]) {
  Deno.test(`lowbit run runs a lowbit file (${format} per-channel weights)`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const model = await readOnnxFile(MLP);
      const tensors = new Map<string, LowbitTensor>();
      for (const [name, t] of model.graph.initializers) {
        if (t.shape.length !== 2) continue;
        const w = { shape: t.shape, data: t.data as Float32Array };
        const qp = fitQParams(w, { format, granularity: { kind: "channel", axis: 0 } });
        const codes = quantizeAffine(w, qp) as Uint8Array;
        tensors.set(name, {
          format,
          bits: format === "int4" ? 4 : 8,
          shape: [...t.shape],
          granularity: qp.granularity,
          mode: qp.mode,
          codes,
          scale: qp.scale,
          zeroPoint: qp.zeroPoint,
        });
        // The float reference: the same model with the weight fake-quantized.
        t.data = dequantizeAffine(codes, qp, t.shape).data;
      }
      assert.ok(tensors.size >= 3);
      const file = `${dir}/mlp.lowbit`;
      await writeLowbitFile(file, model, { note: "test" }, tensors);
      const x = readNpy(await Deno.readFile(EVAL_X));
      const want = (await createExecutor(model).run({ x })).logits.data as Float32Array;
      for (const q of ["float", "integer"] as const) {
        const out = `${dir}/y_${q}.npy`;
        await runModelFiles(file, [EVAL_X], [out], q);
        const got = readNpy(await Deno.readFile(out)).data as Float32Array;
        let maxAbs = 0;
        for (let i = 0; i < want.length; i++) maxAbs = Math.max(maxAbs, Math.abs(got[i] - want[i]));
        assert.ok(maxAbs < 1e-4, `${format} ${q}: max abs ${maxAbs}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

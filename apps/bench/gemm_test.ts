import assert from "node:assert/strict";
import { gemmIntRef } from "@lowbit/kernels";
import { tinyMatMulModel } from "./_tiny_onnx.ts";
import { DEFAULT_BENCH_OPTIONS } from "./gemm.ts";
import { runBenchmarks } from "./run.ts";

Deno.test("tinyMatMulModel() runs in onnxruntime-web and equals gemmIntRef", async () => {
  const ort = await import("onnxruntime-web");
  const [M, K, N] = [3, 5, 2];
  const a = new Uint8Array(M * K).map((_, i) => (i * 37) % 256);
  const b = new Int8Array(K * N).map((_, i) => ((i * 91) % 256) - 128);
  const session = await ort.InferenceSession.create(
    tinyMatMulModel({ op: "MatMulInteger", aType: "uint8", bType: "int8", M, K, N, b }),
  );
  const out = await session.run({ A: new ort.Tensor("uint8", a, [M, K]) });
  assert.deepEqual([...(out.Y.data as Int32Array)], [...gemmIntRef(a, M, K, b, N)]);
  await session.release();
});

Deno.test("runBenchmarks() reports impl, op, M, N, K, threads, gops for lowbit and ort", async () => {
  const rows = await runBenchmarks({
    ...DEFAULT_BENCH_OPTIONS,
    sizes: [32],
    gemvSize: 64,
    threads: [1],
    impls: ["lowbit:s8s8", "ort:u8s8"],
    runs: 1,
    warmup: 1,
  });
  assert.deepEqual(
    rows.map((r) => `${r.impl} ${r.op} ${r.M}x${r.N}x${r.K} t${r.threads}`),
    [
      "lowbit:s8s8 gemm 32x32x32 t1",
      "lowbit:s8s8 gemv 1x64x64 t1",
      "ort:u8s8 gemm 32x32x32 t1",
      "ort:u8s8 gemv 1x64x64 t1",
    ],
  );
  assert.ok(rows.every((r) => r.gops > 0 && Number.isFinite(r.gops)));
});

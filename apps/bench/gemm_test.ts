import assert from "node:assert/strict";
import { gemmIntRef } from "@lowbit/kernels";
import { tinyMatMulModel } from "./_tiny_onnx.ts";
import { createBenchContext, DEFAULT_BENCH_OPTIONS, timeCases } from "./gemm.ts";
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
  // lowbit and its onnxruntime-web peer ran in the same rounds (one child process): each lowbit
  // row has the median per-round speed ratio, the peer rows none.
  for (const r of rows) {
    if (r.impl.startsWith("lowbit:")) assert.ok(r.vs_ort! > 0 && Number.isFinite(r.vs_ort), r.impl);
    else assert.equal(r.vs_ort, undefined);
  }
});

Deno.test("timeCases interleaves the timed runs of a group and keeps each case's own counter", async () => {
  const log: string[] = [];
  const body = (name: string) => () =>
    Promise.resolve({ run: (i: number) => void log.push(`${name}${i}`), dispose() {} });
  const ctx = createBenchContext();
  const spec = { impl: "x", op: "gemm" as const, M: 1, N: 1, K: 1 };
  try {
    // warmup 1000 runs caps the 300 ms warm-up loop, so the log is exact.
    await timeCases(
      [
        { ...spec, threads: 1, setup: body("a") },
        { ...spec, threads: 2, setup: body("b") },
      ],
      ctx,
      { runs: 3, warmup: 1000 },
    );
  } finally {
    ctx.close();
  }
  assert.equal(log.length, 2006);
  assert.deepEqual(log.slice(2000), ["a1000", "b1000", "a1001", "b1001", "a1002", "b1002"]);
  assert.equal(log[999], "a999");
  assert.equal(log[1000], "b0");
});

// temporary A/B: interleaved min-of-N timing (robust to other load), deleted before commit
import * as ort from "onnxruntime-web";
import { tinyMatMulModel } from "./_tiny_onnx.ts";
import { getFormat } from "@lowbit/core";
import { createFloatKernels, gemmF32, gemmMinifloat, packF32B, packMinifloatB } from "@lowbit/kernels";
ort.env.wasm.numThreads = 1;
const k = createFloatKernels();
const runs = Number(Deno.args[0] ?? 21);
const g = (n: number) => Float32Array.from({ length: n }, () => { let s = 0; for (let i = 0; i < 6; i++) s += Math.random(); return s - 3; });
const pool4 = getFormat("fp4_e2m1fn").encode(g(65536).map((v) => v * 1.5));
const pool8 = getFormat("fp8_e4m3fn").encode(g(65536).map((v) => v * 100));
for (const [M, N, K] of [[512, 512, 512], [1, 4096, 4096], [256, 256, 256], [1024, 1024, 1024]]) {
  const a = Float32Array.from({ length: M * K }, () => Math.random() - 0.5);
  const b = Float32Array.from({ length: K * N }, () => Math.random() - 0.5);
  const session = await ort.InferenceSession.create(tinyMatMulModel({ op: "MatMul", aType: "float32", bType: "float32", M, K, N, b }));
  const feed = { A: new ort.Tensor("float32", a, [M, K]) };
  const p = packF32B(b, K, N, { kernels: k });
  const c4 = Uint8Array.from({ length: K * N }, () => pool4[(Math.random() * 65536) | 0]);
  const c8 = Uint8Array.from({ length: K * N }, () => pool8[(Math.random() * 65536) | 0]);
  const f4 = packMinifloatB({ format: "fp4_e2m1fn", k: K, n: N, codes: c4, channelScale: new Float32Array(N).fill(0.01) }, k);
  const f8 = packMinifloatB({ format: "fp8_e4m3fn", k: K, n: N, codes: c8, channelScale: new Float32Array(N).fill(0.01) }, k);
  const mx = packMinifloatB({ format: "mxfp4", k: K, n: N, codes: c4, scales: new Uint8Array(Math.ceil(K / 32) * N).fill(120) }, k);
  const nv = packMinifloatB({ format: "nvfp4", k: K, n: N, codes: c4, scales: new Uint8Array(Math.ceil(K / 16) * N).fill(0x38), tensorScale: 0.25 }, k);
  const out = new Float32Array(M * N);
  const cases: [string, () => unknown][] = [
    ["ort:f32", () => session.run(feed)],
    ["lowbit:f32", () => gemmF32(a, M, p, { out })],
    ["lowbit:fp8w", () => gemmMinifloat(a, M, f8, { out })],
    ["lowbit:fp4w", () => gemmMinifloat(a, M, f4, { out })],
    ["lowbit:mxfp4w", () => gemmMinifloat(a, M, mx, { out })],
    ["lowbit:nvfp4w", () => gemmMinifloat(a, M, nv, { out })],
  ];
  const best = cases.map(() => Infinity);
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < cases.length; i++) {
      const t0 = performance.now();
      await cases[i][1]();
      best[i] = Math.min(best[i], performance.now() - t0);
    }
  }
  const gf = (i: number) => 2 * M * N * K / best[i] / 1e6;
  console.log(`${M}x${N}x${K} (${k.isa}, min of ${runs}, interleaved)`);
  cases.forEach(([n], i) => console.log(`  ${n.padEnd(14)} ${gf(i).toFixed(2).padStart(7)} GFLOP/s  ${(gf(i) / gf(0)).toFixed(2)}x ort:f32  ${(gf(i) / gf(1)).toFixed(2)}x lowbit:f32`));
  await session.release(); p.dispose(); f4.dispose(); f8.dispose(); mx.dispose(); nv.dispose();
}

import { floatKernels, gemmF32, packF32B } from "@lowbit/kernels";
const k = floatKernels(); console.log(k.isa, k.madd);
const M = 25600, K = 64, N = 256;
const a = new Float32Array(M * K).fill(0.5), b = new Float32Array(K * N).fill(0.25);
const p = packF32B(b, K, N);
for (let r = 0; r < 3; r++) { const t0 = performance.now(); gemmF32(a, M, p); const dt = performance.now() - t0; console.log("gemm ms", dt.toFixed(1), "GFLOP/s", (2 * M * N * K / dt / 1e6).toFixed(1)); }

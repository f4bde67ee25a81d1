import { createFloatKernels, gemmF32, packF32B, packMinifloatB, gemmMinifloat } from "./mod.ts";
const k = createFloatKernels({ isa: (Deno.args[0] ?? "wasmrelaxedsimd") as "wasmsimd" });
const m = 1, n = 4096, kk = 4096;
const a = Float32Array.from({ length: m * kk }, () => Math.random() - 0.5);
const b = Float32Array.from({ length: kk * n }, () => Math.random() - 0.5);
const p = packF32B(b, kk, n, { kernels: k });
const out = new Float32Array(m*n);
const codes = Uint8Array.from({ length: kk * n }, () => Math.floor(Math.random() * 16));
const codes8 = Uint8Array.from({ length: kk * n }, () => Math.floor(Math.random() * 126));
const codes8n = Uint8Array.from({ length: kk * n }, () => 8 + Math.floor(Math.random() * 110));
const f4 = packMinifloatB({ format: "fp4_e2m1fn", k: kk, n, codes }, k);
const f8 = packMinifloatB({ format: "fp8_e4m3fn", k: kk, n, codes: codes8 }, k);
const f8n = packMinifloatB({ format: "fp8_e4m3fn", k: kk, n, codes: codes8n }, k);
const mx = packMinifloatB({ format: "mxfp4", k: kk, n, codes, scales: new Uint8Array(Math.ceil(kk/32)*n).fill(127) }, k);
const nv = packMinifloatB({ format: "nvfp4", k: kk, n, codes, scales: new Uint8Array(Math.ceil(kk/16)*n).fill(0x38), tensorScale: 0.5 }, k);
for (const [name, fn] of [["f32", () => gemmF32(a, m, p, { out })], ["fp4", () => gemmMinifloat(a, m, f4, { out })], ["fp8", () => gemmMinifloat(a, m, f8, { out })], ["fp8 normal only", () => gemmMinifloat(a, m, f8n, { out })], ["mxfp4", () => gemmMinifloat(a, m, mx, { out })], ["nvfp4", () => gemmMinifloat(a, m, nv, { out })]] as const) {
  fn();
  const ts: number[] = [];
  for (let r = 0; r < 9; r++) { const t0 = performance.now(); fn(); ts.push(performance.now() - t0); }
  ts.sort((x, y) => x - y);
  console.log(k.isa, name, m, n, kk, (2 * m * n * kk / ts[4] / 1e6).toFixed(1), "GFLOP/s");
}

import assert from "node:assert/strict";
import { createPool } from "@lowbit/runtime";
import {
  createFloatKernelsOn,
  floatKernelSources,
  gemmF32,
  gemmF32Parallel,
  gemmMinifloat,
  gemmMinifloatParallel,
  packF32B,
  packMinifloatB,
} from "./float.ts";
import { refGemmF32 } from "./reference_float.ts";
import { decodeMinifloatWeights } from "./float.ts";

Deno.test("gemmF32Parallel() / gemmMinifloatParallel() on 2 threads equal one thread and the reference", async () => {
  const pool = await createPool({ modules: floatKernelSources(), threads: 2 });
  try {
    const k = createFloatKernelsOn(pool);
    let s = 7;
    const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    for (const [m, n, kk] of [[1, 300, 77], [37, 270, 65], [4, 513, 40]]) {
      const a = Float32Array.from({ length: m * kk }, r),
        b = Float32Array.from({ length: kk * n }, r);
      const bias = Float32Array.from({ length: n }, r);
      const p = packF32B(b, kk, n, { kernels: k });
      const par = await gemmF32Parallel(a, m, p, { bias, activation: "relu" });
      assert.deepEqual(par, gemmF32(a, m, p, { bias, activation: "relu" }));
      assert.deepEqual(par, refGemmF32(a, b, m, kk, n, k.madd, { bias, lo: 0 }));
      const codes = Uint8Array.from({ length: kk * n }, () => Math.floor((r() + 1) * 8) & 15);
      const scales = Uint8Array.from(
        { length: Math.ceil(kk / 32) * n },
        () => 120 + Math.floor((r() + 1) * 4),
      );
      const spec = { format: "mxfp4" as const, k: kk, n, codes, scales };
      const w = packMinifloatB(spec, k);
      const mpar = await gemmMinifloatParallel(a, m, w, { bias });
      assert.deepEqual(mpar, gemmMinifloat(a, m, w, { bias }));
      assert.deepEqual(
        mpar,
        refGemmF32(a, decodeMinifloatWeights(spec), m, kk, n, k.madd, { bias }),
      );
      p.dispose();
      w.dispose();
    }
  } finally {
    pool.close();
  }
});

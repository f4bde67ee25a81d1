import { OPS } from "../../libs/graph/exec/ops/table.ts";
import { transpose2d } from "../../libs/graph/exec/ops/matmul.ts";
import { floatKernels, gemmF32, packF32B } from "@lowbit/kernels";
const x = { dtype: "float32" as const, shape: [1, 24, 160, 160], data: new Float32Array(24 * 25600).map((_, i) => Math.sin(i)) };
const w = { dtype: "float32" as const, shape: [24, 24, 2, 2], data: new Float32Array(24 * 96).map((_, i) => Math.cos(i)) };
const node = { name: "ct", op: "ConvTranspose", domain: "", inputs: [], outputs: ["y"], attrs: { kernel_shape: { kind: "ints" as const, value: [2, 2] }, strides: { kind: "ints" as const, value: [2, 2] } } };
for (let r = 0; r < 4; r++) { const t0 = performance.now(); await OPS.ConvTranspose([x, w], node, { opset: 11 }); console.log("convT ms", (performance.now() - t0).toFixed(1)); }
const wT = transpose2d(w.data, 24, 96);
for (let r = 0; r < 3; r++) { const t0 = performance.now(); const p = packF32B(x.data, 24, 25600); const t1 = performance.now(); gemmF32(wT, 96, p); const t2 = performance.now(); p.dispose(); console.log("pack", (t1 - t0).toFixed(1), "gemm", (t2 - t1).toFixed(1)); }

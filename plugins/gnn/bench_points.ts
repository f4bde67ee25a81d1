// Which quantization point costs the most: each export quantized at --preset w8a4 with
// `--gnn-ranges uniform` and with the default (degree bins × feature columns, --gnn-fit auto), then
// simulated with one activation point alone quantized (the other activations in float, the
// weights int8 as fitted), and with every point but that one. Test accuracy (%) on the export's
// test mask and output SQNR (dB) against torch's logits. The table "Which point costs the most"
// of plugins/gnn/README.md. Run from the repository root:
//
//   npx deno run -A plugins/gnn/bench_points.ts [--only NAME] [--gnn-self-loops inside]
//
// NAME picks exports by substring (e.g. gcn2_dense, digits16/gat); the default is gcn2_dense,
// gcn2_edges and digits16/gat_edges.
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { quantize, simulate } from "@lowbit/pipeline";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { nodeAccuracy, plugin } from "./mod.ts";

const FIX = fileURLToPath(new URL("../../fixtures/gnn/", import.meta.url));
const rd = async (f: string): Promise<TensorData> => readNpy(await Deno.readFile(FIX + f), f);
const { values } = parseArgs({
  args: Deno.args,
  options: { only: { type: "string" }, "gnn-self-loops": { type: "string", default: "split" } },
});
// [folder under fixtures/gnn, model, graph input, its file]
const EXPORTS: [string, string, string, string][] = [
  ["", "gcn_dense", "adj", "adj_norm"],
  ["", "gcn_edges", "edge_index", "edge_index"],
  ["", "gcn2_dense", "adj", "adj_norm"],
  ["", "gcn2_edges", "edge_index", "edge_index"],
  ["unseen/digits16/", "gat_edges", "edge_index", "edge_index"],
  ["unseen/cancer/", "gat_edges", "edge_index", "edge_index"],
];
const DEFAULT = ["gcn2_dense", "gcn2_edges", "digits16/gat_edges"];

for (const [dir, name, input, file] of EXPORTS) {
  const id = dir + name;
  if (values.only ? !id.includes(values.only) : !DEFAULT.some((d) => id.endsWith(d))) continue;
  const model = await readOnnxFile(`${FIX}${dir}${name}.onnx`);
  const inputs = { x: await rd(`${dir}x.npy`), [input]: await rd(`${dir}${file}.npy`) };
  const y = await rd(`${dir}y.npy`), mask = await rd(`${dir}test_mask.npy`);
  const ref = (await rd(`${dir}${name}_logits.npy`)).data as Float32Array;
  const figures = (l: TensorData): string => {
    const b = l.data as Float32Array;
    let sig = 0, err = 0;
    for (let i = 0; i < ref.length; i++) sig += ref[i] ** 2, err += (ref[i] - b[i]) ** 2;
    const acc = 100 * nodeAccuracy(l, y.data, mask.data).accuracy;
    return `${acc.toFixed(2)} % ${(10 * Math.log10(sig / err)).toFixed(1)} dB`;
  };
  for (const ranges of ["uniform", "degree"]) {
    const r = createRegistry();
    registerBuiltins(r);
    r.use(plugin);
    const { quantized: qm } = await quantize({
      model,
      calib: { inputs: { ...inputs }, count: inputs.x.shape[0] },
      preset: "w8a4",
      registry: r,
      pluginOptions: { "gnn-ranges": ranges, "gnn-self-loops": values["gnn-self-loops"]! },
    });
    const points = qm.plan.entries.filter((e) => e.role === "activation" && !e.skip);
    const only = (keep: (v: string) => boolean) => {
      const entries = qm.plan.entries.map((e) =>
        e.role === "activation" && !e.skip && !keep(e.value) ? { ...e, skip: true } : e
      );
      return simulate({ ...qm, plan: { ...qm.plan, entries } }).run(inputs);
    };
    console.log(`${id} ${ranges}: all points ${figures(await simulate(qm).run(inputs))}`);
    console.log(`  weights only: ${figures(await only(() => false))}`);
    for (const p of points) {
      const alone = figures(await only((v) => v === p.value));
      const but = figures(await only((v) => v !== p.value));
      console.log(`  ${p.value}: alone ${alone} | all but it ${but}`);
    }
  }
}

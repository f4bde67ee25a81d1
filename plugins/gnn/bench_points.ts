// Which quantization point costs the most: each export quantized at --preset w8a4 with
// `--gnn-ranges uniform` and with the default (degree bins × feature columns, --gnn-fit auto), then
// simulated with one activation point alone quantized (the other activations in float, the
// weights int8 as fitted), and with every point but that one; then all points with `x` (when it
// is the preset's per-tensor point) at one range per feature column, and, with the default, the
// last aggregation point refitted at its min / max × 1, 0.9, …, 0.6. Test accuracy (%) on the
// export's test mask and output SQNR (dB) against torch's logits. The table "Which point costs
// the most" of plugins/gnn/README.md. Run from the repository root:
//
//   npx deno run -A plugins/gnn/bench_points.ts [--only NAME] [--gnn-self-loops inside]
//
// NAME picks exports by substring (e.g. gcn2_dense, digits16/gat); the default is gcn2_dense,
// gcn2_edges and digits16/gat_edges.
import { chooseQParams, createRegistry, registerBuiltins, type Registry } from "@lowbit/core";
import { createExecutor, type Model, readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { quantize, simulate } from "@lowbit/pipeline";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { findAggregations, fitDegreeParams, nodeAccuracy, nodeDegrees, plugin } from "./mod.ts";

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
    // x (the graph's input features) with one min / max range per feature column instead of
    // the preset's per-tensor range, when it is the preset's point (not an aggregation input)
    const x = points.find((e) => e.value === "x" && !e.by);
    if (x) {
      const cols = chooseQParams(columnRanges(inputs.x), {
        format: x.format!,
        granularity: { kind: "channel", axis: 1 },
        mode: x.mode ?? "affine",
      });
      const entries = qm.plan.entries.map((e) =>
        e === x
          ? {
            ...e,
            granularity: { kind: "channel" as const, axis: 1 },
            scale: [...cols.scale],
            zeroPoint: [...cols.zeroPoint],
          }
          : e
      );
      const out = await simulate({ ...qm, plan: { ...qm.plan, entries } }).run(inputs);
      console.log(`  all points, x per feature column: ${figures(out)}`);
    }
    if (ranges !== "degree") continue;
    // the last aggregation point refitted at min / max × c (bins × columns), the rest as fitted
    const last = points.filter((e) => e.by === "gnn-aggregations").at(-1)!;
    // the quantized model's graph (the plugin's rewrites included) with the float weights
    const float = {
      ...qm.model,
      graph: {
        ...qm.model.graph,
        initializers: new Map([...qm.model.graph.initializers, ...model.graph.initializers]),
      },
    };
    const value = await floatValue(float, r, inputs, last.value);
    const source = findAggregations(qm.model.graph)[0].degrees;
    const degrees = nodeDegrees(inputs[source.input], source, value.shape[0]);
    const per = value.data.length / value.shape[0];
    const scan: string[] = [];
    for (const c of [1, 0.9, 0.8, 0.7, 0.6]) {
      const t = { shape: [value.shape[0], per], data: value.data.map((v) => v * c) };
      const layout = { bins: 8, protect: 0, protectFloat: false, source, columns: per };
      const qp = fitDegreeParams(t, degrees, layout, { format: last.format!, mode: "affine" });
      const entries = qm.plan.entries.map((e) =>
        e === last ? { ...e, scale: [...qp.scale], zeroPoint: [...qp.zeroPoint] } : e
      );
      scan.push(
        `× ${c}: ${figures(await simulate({ ...qm, plan: { ...qm.plan, entries } }).run(inputs))}`,
      );
    }
    console.log(`  ${last.value} at min / max ${scan.join(", ")}`);
  }
}

/** Min / max of each column of a [nodes, F] tensor. */
function columnRanges(t: TensorData): { min: Float32Array; max: Float32Array } {
  const [n, f] = t.shape, d = t.data as Float32Array;
  const min = new Float32Array(f).fill(Infinity), max = new Float32Array(f).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < f; c++) {
      min[c] = Math.min(min[c], d[i * f + c]);
      max[c] = Math.max(max[c], d[i * f + c]);
    }
  }
  return { min, max };
}

/** One value of a model run on the inputs. */
async function floatValue(
  m: Model,
  r: Registry,
  inputs: Record<string, TensorData>,
  name: string,
): Promise<{ shape: number[]; data: Float32Array }> {
  let got: { shape: number[]; data: Float32Array } | undefined;
  await createExecutor(m, { registry: r }).run(inputs, {
    watch: [name],
    observe: (_, t) => (got ??= { shape: [...t.shape], data: (t.data as Float32Array).slice() }),
  });
  return got!;
}

// The results table of plugins/gnn/README.md: test accuracy (on the test mask) of each fixture
// export, float (torch's logits) and quantized at --preset w8a4 (aggregations int4) with uniform
// ranges (min / max, or the built-in mse calibrator), degree-aware ranges (the default: bin ×
// column ranges, --gnn-fit auto; or min / max, or mse), one range per bin (--gnn-columns off, min /
// max), one per column (--gnn-bins 1), degree-aware ranges + protection, and the mixed search:
// weights only (aggregations int4), and weights, layer inputs and aggregation points together
// (`--act-formats int4,int8 --budget-act 6bits`, the aggregation points' bits searched too). Run
// from the repository root:
//
//   npx deno run -A plugins/gnn/bench.ts [--protect 0.05] [--budget 7bits] [--act-formats int4,int8]
//     [--budget-act 6bits] [--only NAME] [--json]
//
// Each variant also gets its output SQNR in dB against torch's logits (`<variant>_sqnr`).
// Every row is computed by the library API the CLI uses (quantize, then simulate); the README
// also gives the equivalent CLI commands.
import { createRegistry, registerBuiltins, type Registry } from "@lowbit/core";
import { readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { quantize, simulate } from "@lowbit/pipeline";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { graphMixedSearch, nodeAccuracy, plugin } from "./mod.ts";

const FIX = fileURLToPath(new URL("../../fixtures/gnn/", import.meta.url));
const rd = async (f: string): Promise<TensorData> => readNpy(await Deno.readFile(FIX + f), f);

const { values } = parseArgs({
  args: Deno.args,
  options: {
    protect: { type: "string", default: "0.05" },
    budget: { type: "string", default: "7bits" },
    json: { type: "boolean" },
    only: { type: "string" },
    "act-formats": { type: "string" },
    "budget-act": { type: "string", default: "6bits" },
  },
});
const graphs: Record<string, TensorData> = {
  adj: await rd("adj.npy"),
  adj_norm: await rd("adj_norm.npy"),
  edge_index: await rd("edge_index.npy"),
};
// [model, graph input, its file; the folder under fixtures/gnn (default: the fixture graph)]
const EXPORTS: [string, string, string, string?][] = [
  ["gcn_dense", "adj", "adj_norm"],
  ["gcn_edges", "edge_index", "edge_index"],
  ["gin_dense", "adj", "adj"],
  ["gin_edges", "edge_index", "edge_index"],
  ["gin_index_add", "edge_index", "edge_index"], // read as torch's sums (--gnn-index-add sum)
  // PyG / DGL's GCN (bias after the aggregation), transform first and aggregate first
  ["gcn2_dense", "adj", "adj_norm"],
  ["gcn2_edges", "edge_index", "edge_index"],
  ["gcn2_aggfirst_dense", "adj", "adj_norm"],
  ["gcn2_aggfirst_edges", "edge_index", "edge_index"],
  // models the plugin was not developed on (fixtures/gnn/unseen/PROVENANCE.md): GraphSAGE (mean)
  // and GAT (2 heads, self-loops) on two other graphs, a 3-layer GIN with BatchNorm and a
  // jumping-knowledge readout
  ["sage_edges", "edge_index", "edge_index", "unseen/digits16/"],
  ["gin3_edges", "edge_index", "edge_index", "unseen/digits16/"],
  ["gat_edges", "edge_index", "edge_index", "unseen/digits16/"],
  ["sage_edges", "edge_index", "edge_index", "unseen/cancer/"],
  ["gat_edges", "edge_index", "edge_index", "unseen/cancer/"],
];

function registry(): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

const pct = (v: number): string => (100 * v).toFixed(2);
const rows: Record<string, unknown>[] = [];
for (const [name, input, file, dir = ""] of EXPORTS) {
  if (values.only && !(dir + name).includes(values.only)) continue;
  const model = await readOnnxFile(`${FIX}${dir}${name}.onnx`);
  const x = await rd(`${dir}x.npy`), y = await rd(`${dir}y.npy`);
  const mask = await rd(`${dir}test_mask.npy`);
  const inputs = { x, [input]: dir ? await rd(`${dir}${file}.npy`) : graphs[file] };
  const acc = (l: TensorData): number => nodeAccuracy(l, y.data, mask.data).accuracy;
  const own: Record<string, string> = name === "gin_index_add" ? { "gnn-index-add": "sum" } : {};
  // torch's logits of the export (the index_add file itself keeps one message per node)
  const floatLogits = await rd(`${dir}${name}_logits.npy`);
  const float = acc(floatLogits);
  // output SQNR (dB) against torch's logits: less coarse than the test accuracy
  const sqnr = (l: TensorData): string => {
    const a = floatLogits.data as Float32Array, b = l.data as Float32Array;
    let sig = 0, err = 0;
    for (let i = 0; i < a.length; i++) sig += a[i] ** 2, err += (a[i] - b[i]) ** 2;
    return (10 * Math.log10(sig / err)).toFixed(1);
  };
  const row: Record<string, unknown> = { model: dir + name, float: pct(float) };
  const protect = Number(values.protect);
  const variants: [string, Record<string, string | number>, string, string?][] = [
    ["uniform", { "gnn-ranges": "uniform" }, "w8a4"],
    ["uniform-mse", { "gnn-ranges": "uniform" }, "w8a4", "mse"],
    // the default: bin × column ranges, fit per point by the output error (--gnn-fit auto)
    ["degree", { "gnn-ranges": "degree" }, "w8a4"],
    ["degree-minmax", { "gnn-fit": "minmax" }, "w8a4"],
    ["degree-mse", { "gnn-fit": "mse" }, "w8a4"],
    // one range per bin (all columns), min / max: the plugin's former default
    ["bins-only", { "gnn-columns": "off", "gnn-fit": "minmax" }, "w8a4"],
    // one range per column, no degree bins
    ["columns-only", { "gnn-bins": 1 }, "w8a4"],
    ["degree+protect", { "gnn-protect": protect }, "w8a4"],
    ["degree+protect-float", { "gnn-protect": protect, "gnn-protect-format": "float" }, "w8a4"],
    ["mixed", { "gnn-agg-format": "int4" }, "mixed"],
    ["mixed-act", {}, "mixed"],
  ];
  for (const [label, options, preset, calibrator] of variants) {
    const pluginOptions = { ...own, ...options };
    const r = registry();
    // as the CLI loads it: the node and edge axes are dynamic, so no input is "whole"
    const calib = { inputs: { ...inputs }, count: x.shape[0] };
    const t0 = performance.now();
    const res = await quantize({
      model,
      calib,
      preset,
      registry: r,
      pluginOptions,
      ...(calibrator ? { calibrator } : {}),
      ...(preset === "mixed"
        ? {
          mixedSearch: graphMixedSearch(inputs, (a) => {
            const n = new Map<string, number>();
            for (const c of Object.values(a)) n.set(c, (n.get(c) ?? 0) + 1);
            row[`${label}_allocation`] = [...n].map(([c, k]) => `${k}× ${c}`).join(", ");
          }),
          mixedOptions: {
            budget: values.budget!,
            metric: "layer-hessian",
            candidates: "int8/channel,int4/channel,int2/channel",
            ...(label === "mixed-act"
              ? { "act-formats": "int4,int8", "budget-act": values["budget-act"]! }
              : values["act-formats"]
              ? { "act-formats": values["act-formats"] }
              : {}),
          },
        }
        : {}),
    }).catch((e: Error) => e);
    if (res instanceof Error) {
      row[label] = `error: ${res.message.slice(0, 80)}`;
      continue;
    }
    const points = res.quantized.plan.entries.filter((e) =>
      e.role === "activation" && !e.skip && e.by === "gnn-aggregations"
    );
    if (label === "mixed-act") {
      row[`${label}_points`] = points.map((e) => `${e.value}:${e.format}`).join(" ");
    }
    const out = await simulate(res.quantized).run(inputs);
    row[label] = pct(acc(out));
    row[`${label}_sqnr`] = sqnr(out);
    row[`${label}_ms`] = Math.round(performance.now() - t0);
  }
  rows.push(row);
  if (!values.json) console.log(JSON.stringify(row));
}
if (values.json) console.log(JSON.stringify(rows, null, 1));

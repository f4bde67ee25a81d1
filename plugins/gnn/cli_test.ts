// The plugin from the command line on one whole graph: `lowbit quantize --whole x,edge_index
// --preset mixed` (the pipeline's search takes the whole graph as one sample, the int64 edge index
// kept int64) must allocate what the library's graphMixedSearch allocates on the same graph and
// write a model computing what the library's quantized model computes; bad graphs end in a clear
// error naming the input.
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { createExecutor, decodeLowbitFile, lowbitModel, writeNpy } from "@lowbit/graph";
import { quantize, simulate } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";
import { graphMixedSearch, plugin } from "./mod.ts";
import { FIX, graphInputs, model } from "./_fixtures.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CANDS = "int8/channel,int4/channel,int2/channel";

async function lowbit(...args: string[]): Promise<{ code: number; stderr: string }> {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}apps/cli/main.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: res.code, stderr: new TextDecoder().decode(res.stderr) };
}

Deno.test({
  name: "lowbit quantize --whole x,edge_index --preset mixed: the library's allocation and model",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const out = `${dir}/gcn.lowbit`;
      const r = await lowbit(
        ...["quantize", `${FIX}gcn_edges.onnx`, "--plugin", "gnn", "--whole", "x,edge_index"],
        ...["--calib", `x=${FIX}x.npy`, "--calib", `edge_index=${FIX}edge_index.npy`],
        ...["--preset", "mixed", "--budget", "5bits", "--metric", "layer-hessian"],
        ...["--candidates", CANDS, "--gnn-agg-format", "int4", "--out", out],
      );
      assert.equal(r.code, 0, r.stderr);
      const plan = JSON.parse(await Deno.readTextFile(`${dir}/gcn.plan.json`));
      // the library on the same graph
      const inputs = await graphInputs("gcn_edges");
      const reg = createRegistry();
      registerBuiltins(reg);
      reg.use(plugin);
      let allocation: Record<string, string> = {};
      const { quantized } = await quantize({
        model: await model("gcn_edges"),
        calib: { inputs: {}, count: 1, whole: { ...inputs } },
        preset: "mixed",
        registry: reg,
        pluginOptions: { "gnn-agg-format": "int4" },
        mixedSearch: graphMixedSearch(inputs, (a) => (allocation = a)),
        mixedOptions: { budget: "5bits", metric: "layer-hessian", candidates: CANDS },
      });
      assert.deepEqual(plan.search.allocation, allocation);
      // 5 bits cannot keep both layers at int8: the budget pressed
      assert.ok(Object.values(allocation).some((c) => c !== "int8/channel"));
      const file = lowbitModel(decodeLowbitFile(await Deno.readFile(out)), { registry: reg });
      const got = await createExecutor(file, { registry: reg }).run(inputs);
      assert.deepEqual(got.logits.data, (await simulate(quantized).run(inputs)).data);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "lowbit quantize of a bad graph: the edge index or the adjacency is named",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const { edge_index } = await graphInputs("gcn_edges");
      const bad = (edge_index.data as BigInt64Array).slice();
      bad[3984 + 5] = 1000n; // destination of edge 5
      await Deno.writeFile(`${dir}/ei.npy`, writeNpy({ ...edge_index, data: bad }));
      const r1 = await lowbit(
        ...["quantize", `${FIX}gcn_edges.onnx`, "--plugin", "gnn", "--whole", "x,edge_index"],
        ...["--calib", `x=${FIX}x.npy`, "--calib", `edge_index=${dir}/ei.npy`],
        ...["--preset", "w8a4", "--out", `${dir}/a.lowbit`],
      );
      assert.equal(r1.code, 2, r1.stderr);
      assert.match(r1.stderr, /edge_index.*edge 5 has destination 1000, outside the graph's 400/);
      const { adj } = await graphInputs("gcn_dense");
      const rect = { ...adj, shape: [400, 200], data: (adj.data as Float32Array).slice(0, 80000) };
      await Deno.writeFile(`${dir}/adj.npy`, writeNpy(rect));
      const r2 = await lowbit(
        ...["quantize", `${FIX}gcn_dense.onnx`, "--plugin", "gnn", "--whole", "x,adj"],
        ...["--calib", `x=${FIX}x.npy`, "--calib", `adj=${dir}/adj.npy`],
        ...["--preset", "w8a4", "--out", `${dir}/b.lowbit`],
      );
      assert.equal(r2.code, 2, r2.stderr);
      assert.match(r2.stderr, /adj.*must be square \(nodes × nodes\), it is \[400, 200\]/);
      assert.doesNotMatch(r1.stderr + r2.stderr, /internal error|\n\s+at /);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

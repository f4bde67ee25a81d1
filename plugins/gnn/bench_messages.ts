// Degree-Quant also quantizes the per-edge messages `norm · x_j` of a GCN (dq/multi_quant.py,
// "message_low"). This measures what that adds on the edge-list GCN fixture at w8a4: the plugin's
// points (uniform or degree-aware) as `quantize` fits them, plus the inputs of the two message
// scatters (the messages, [edges, 32] and [edges, 10]) fake-quantized at int4 affine — one min /
// max range per tensor, or one per bin of the destination's in-degree ([0,2) [2,4) … [128,∞)).
// Test accuracy on the 240 test nodes. Run from the repository root:
//
//   npx deno run -A plugins/gnn/bench_messages.ts
import { chooseQParams, createRegistry, registerBuiltins, roundHalfEven } from "@lowbit/core";
import { createExecutor, type TensorData } from "@lowbit/graph";
import { activationTransform, quantize } from "@lowbit/pipeline";
import { degreeBin, findAggregations, nodeAccuracy, nodeDegrees, plugin } from "./mod.ts";
import { graphInputs, model, npy } from "./_fixtures.ts";

const BINS = 8;
const inputs = await graphInputs("gcn_edges");
const m = await model("gcn_edges");
const y = await npy("y.npy"), mask = await npy("test_mask.npy");
const pct = (l: TensorData): string =>
  (100 * nodeAccuracy(l, y.data, mask.data).accuracy).toFixed(2);
const messages = findAggregations(m.graph).map((a) =>
  m.graph.nodes.find((n) => n.name === a.node)!.inputs[2]
);
const ei = inputs.edge_index;
const edges = ei.shape[1];
const deg = nodeDegrees(ei, { input: "edge_index", kind: "edges", row: 1 }, inputs.x.shape[0]);
const binOf = Int32Array.from(
  { length: edges },
  (_, e) => degreeBin(deg[Number((ei.data as BigInt64Array)[edges + e])], BINS),
);

const float = new Map<string, TensorData>();
await createExecutor(m).run(inputs, {
  watch: messages,
  observe: (n, t) => float.set(n, { ...t, data: (t.data as Float32Array).slice() } as TensorData),
});

/** int4 affine fake-quantization of the message tensors, per tensor or per destination bin. */
function messageHook(binned: boolean): (name: string, t: TensorData) => TensorData | undefined {
  const params = new Map<string, { scale: Float32Array; zero: Int32Array }>();
  for (const name of messages) {
    const t = float.get(name)!, per = t.shape[1], g = binned ? BINS : 1;
    const lo = new Float32Array(g), hi = new Float32Array(g);
    for (let e = 0; e < edges; e++) {
      const b = binned ? binOf[e] : 0;
      for (let k = 0; k < per; k++) {
        const v = (t.data as Float32Array)[e * per + k];
        lo[b] = Math.min(lo[b], v), hi[b] = Math.max(hi[b], v);
      }
    }
    const qp = chooseQParams({ min: lo, max: hi }, {
      format: "int4",
      granularity: { kind: "channel", axis: 0 },
      mode: "affine",
    });
    params.set(name, { scale: Float32Array.from(qp.scale), zero: Int32Array.from(qp.zeroPoint) });
  }
  return (name, t) => {
    const p = params.get(name);
    if (!p) return undefined;
    const per = t.shape[1], src = t.data as Float32Array, out = new Float32Array(src.length);
    for (let e = 0; e < edges; e++) {
      const b = p.scale.length > 1 ? binOf[e] : 0, s = p.scale[b], z = p.zero[b];
      for (let k = e * per; k < (e + 1) * per; k++) {
        out[k] = (Math.min(7, Math.max(-8, roundHalfEven(src[k] / s) + z)) - z) * s;
      }
    }
    return { dtype: "float32", shape: [...t.shape], data: out };
  };
}

for (const ranges of ["uniform", "degree"] as const) {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  const { quantized } = await quantize({
    model: m,
    calib: { inputs: { ...inputs }, count: 1 },
    preset: "w8a4",
    registry: r,
    pluginOptions: { "gnn-ranges": ranges },
  });
  const points = activationTransform(quantized, inputs);
  const msg = messageHook(ranges === "degree");
  const run = async (hook: (n: string, t: TensorData) => TensorData | undefined) =>
    pct(
      (await createExecutor(quantized.model, { registry: r }).run(inputs, { transform: hook }))
        .logits,
    );
  console.log(JSON.stringify({
    ranges,
    points: await run(points),
    "points+messages": await run((n, t) => msg(n, t) ?? points(n, t)),
  }));
}

// Detection on both exports of the MoE fixture: the names below are the ones torch.onnx.export
// gave the fixture's modules (tools/fixtures/train_moe.py: `router`, `experts.{i}.0` / `.2`),
// read off the model definition, not off the detector.
import assert from "node:assert/strict";
import { readOnnxFile } from "@lowbit/graph";
import { detectMoE, layerRoles, parseOverride } from "./mod.ts";

const DIR = new URL("../../fixtures/moe/", import.meta.url);
const load = (f: string) => readOnnxFile(new URL(f, DIR).pathname);
const expertLayers = (
  i: number,
) => [`/experts.${i}/experts.${i}.0/Gemm`, `/experts.${i}/experts.${i}.2/Gemm`];

Deno.test("detectMoE finds the router, four experts and the combine of the sparse export", async () => {
  const { graph } = await load("moe_sparse.onnx");
  const { routers } = detectMoE(graph);
  assert.equal(routers.length, 1);
  const r = routers[0];
  assert.equal(r.node, "/router/Gemm");
  assert.equal(r.dispatch, "sparse");
  assert.equal(r.softmax, "/Softmax");
  assert.equal(r.topk, "/TopK");
  assert.equal(r.k, 1);
  assert.equal(r.numExperts, 4);
  assert.equal(r.tokens, "/Relu_output_0");
  assert.deepEqual(r.experts.map((e) => e.index), [0, 1, 2, 3]);
  for (const e of r.experts) {
    assert.deepEqual(e.layers, expertLayers(e.index));
    // the dispatch gathers token rows; the gate is the gathered TopK value
    const gather = graph.nodes.find((n) => n.name === e.dispatch)!;
    assert.equal(gather.op, "Gather");
    assert.equal(gather.inputs[0], "/Relu_output_0");
    assert.equal(graph.nodes.find((n) => n.outputs[0] === e.gate)!.inputs[0], "/TopK_output_0");
  }
  // the last ScatterND writes the fourth expert's rows: every expert is merged there
  assert.equal(r.combine, "/ScatterND_3");
  const roles = layerRoles({ routers });
  assert.deepEqual(roles.get("/router/Gemm"), { router: 0, expert: -1 });
  assert.deepEqual(roles.get("/experts.2/experts.2.2/Gemm"), { router: 0, expert: 2 });
  assert.equal(roles.get("/head/Gemm"), undefined);
});

Deno.test("detectMoE finds the dense export's experts, masked gates and Add combine", async () => {
  const { graph } = await load("moe_dense.onnx");
  const [r] = detectMoE(graph).routers;
  assert.equal(r.dispatch, "dense");
  assert.equal(r.node, "/router/Gemm");
  for (const e of r.experts) {
    assert.deepEqual(e.layers, expertLayers(e.index));
    assert.equal(e.input, "/Relu_output_0");
    assert.equal(e.dispatch, undefined);
    assert.equal(graph.nodes.find((n) => n.outputs[0] === e.gate)!.op, "Slice");
  }
  assert.equal(r.combine, "/Add_2");
});

Deno.test("a model without the pattern has no router; an override names router and experts", async () => {
  const { graph } = await load("moe_dense.onnx");
  // The gate multiply done by an op detection does not know: no expert is found.
  const odd = {
    ...graph,
    nodes: graph.nodes.map((n) => /^\/Mul_[1-4]$/.test(n.name) ? { ...n, op: "Einsum" } : n),
  };
  assert.deepEqual(detectMoE(odd).routers, []);
  const override = parseOverride({
    routers: [{ router: "/router/*", experts: [0, 1, 2, 3].map((i) => `/experts.${i}/*`) }],
  });
  const [r] = detectMoE(odd, override).routers;
  assert.equal(r.node, "/router/Gemm");
  assert.equal(r.dispatch, "override");
  assert.equal(r.topk, "/TopK");
  for (const e of r.experts) assert.deepEqual(e.layers, expertLayers(e.index));
  // overrides that name nothing are errors that say what matched
  assert.throws(
    () => detectMoE(odd, { routers: [{ router: "/nope", experts: ["/experts.0/*"] }] }),
    (e: Error & { code?: string }) =>
      e.code === "INVALID_ARGUMENT" && /matches nothing/.test(e.message),
  );
  assert.throws(
    () => detectMoE(odd, { routers: [{ router: "/router/Gemm", experts: ["/nope/*"] }] }),
    /expert 0 \('\/nope\/\*'\) matches no layer/,
  );
  assert.throws(() => parseOverride({ routers: [] }, "f.json"), /non-empty `routers`/);
  assert.throws(() => parseOverride({ routers: [{ router: "r", experts: [3] }] }), /a pattern/);
});

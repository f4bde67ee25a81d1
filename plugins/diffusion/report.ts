/**
 * The HTML page of `lowbit diffusion eval`: the ε relative MSE over t as a chart, the figures,
 * and the float and quantized samples side by side — one self-contained file (inline SVG, no
 * script).
 *
 * @module
 */

import type { TensorData } from "@lowbit/graph";
import type { EpsError, SampleError } from "./metrics.ts";

/** What the page shows. */
export interface DiffusionReport {
  /** The quantized model's file name. */
  readonly model: string;
  /** The float model's file name. */
  readonly float: string;
  /** ε relative MSE per timestep. */
  readonly eps: EpsError;
  /** Sample error (absent without noise). */
  readonly samples?: SampleError;
  /** The float model's samples `[N, C, H, W]`. */
  readonly floatSamples?: TensorData;
  /** The quantized model's samples from the same noise. */
  readonly quantSamples?: TensorData;
}

const esc = (s: string): string =>
  s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** A line chart of per-timestep values on a log axis. */
function chart(values: readonly number[]): string {
  const W = 640, H = 280, L = 60, B = 44, R = 10, Tp = 10;
  const ok = values.filter((v) => v > 0 && Number.isFinite(v));
  if (!ok.length) return "<p>(no positive values to chart)</p>";
  const lo = Math.floor(Math.log10(Math.min(...ok))), hi = Math.ceil(Math.log10(Math.max(...ok)));
  const span = Math.max(1, hi - lo);
  const X = (t: number) => L + ((W - L - R) * t) / Math.max(1, values.length - 1);
  const Y = (v: number) => Tp + ((H - Tp - B) * (hi - Math.log10(v))) / span;
  const pts = values.map((v, t) => (v > 0 ? `${X(t).toFixed(1)},${Y(v).toFixed(1)}` : "")).filter(
    Boolean,
  );
  const grid: string[] = [];
  for (let e = lo; e <= lo + span; e++) {
    grid.push(
      `<line x1="${L}" x2="${W - R}" y1="${Y(10 ** e)}" y2="${Y(10 ** e)}" stroke="#ddd"/>` +
        `<text x="${L - 6}" y="${Y(10 ** e) + 4}" text-anchor="end" font-size="11">1e${e}</text>`,
    );
  }
  for (let t = 0; t < values.length; t += Math.max(1, Math.round(values.length / 10))) {
    grid.push(`<text x="${X(t)}" y="${H - 26}" text-anchor="middle" font-size="11">${t}</text>`);
  }
  return `<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" role="img">` +
    grid.join("") +
    `<polyline fill="none" stroke="#c33" stroke-width="2" points="${pts.join(" ")}"/>` +
    `<text x="${(L + W) / 2}" y="${
      H - 4
    }" text-anchor="middle" font-size="12">timestep t</text></svg>`;
}

/** A grid of images `[N, C, H, W]` in [−1, 1], grey (C = 1) or RGB (C = 3), 6 px per pixel. */
function grid(t: TensorData): string {
  const [n, c, h, w] = t.shape.length === 4 ? t.shape : [t.shape[0], 1, t.shape[1], t.shape[2]];
  const d = t.data as Float32Array;
  const cols = Math.ceil(Math.sqrt(n)), px = 6, gap = 4;
  const rows = Math.ceil(n / cols);
  const byte = (v: number) => Math.round(Math.max(0, Math.min(1, (v + 1) / 2)) * 255);
  const rects: string[] = [];
  for (let i = 0; i < n; i++) {
    const ox = (i % cols) * (w * px + gap), oy = Math.floor(i / cols) * (h * px + gap);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = (ch: number) => d[((i * c + ch) * h + y) * w + x];
        const [r, g, b] = c === 3
          ? [at(0), at(1), at(2)].map(byte)
          : new Array(3).fill(byte(at(0)));
        rects.push(
          `<rect x="${ox + x * px}" y="${oy + y * px}" width="${px}" height="${px}" ` +
            `fill="rgb(${r},${g},${b})"/>`,
        );
      }
    }
  }
  const W = cols * (w * px + gap), H = rows * (h * px + gap);
  return `<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg">${
    rects.join("")
  }</svg>`;
}

/**
 * The figures of an evaluation as an HTML fragment: the table, the ε chart over t and the
 * sample grids (the evaluation page's body and the quantize report's section).
 *
 * @param r figures and samples (model names optional)
 * @returns the HTML fragment
 *
 * @example
 * ```ts
 * import { diffusionReportBody } from "@lowbit/diffusion";
 * const html = diffusionReportBody({ eps: { perT: [0.01, 0.001], mean: 0.0055 } });
 * if (!html.includes("<svg") || !html.includes("0.550 %")) throw new Error();
 * ```
 */
export function diffusionReportBody(
  r: Omit<DiffusionReport, "model" | "float"> & { model?: string; float?: string },
): string {
  const pct = (v: number) => `${(100 * v).toFixed(3)} %`;
  const rows = [
    ...(r.model ? [["quantized model", esc(r.model)]] : []),
    ...(r.float ? [["float model", esc(r.float)]] : []),
    ["mean ε relative MSE over t", pct(r.eps.mean)],
    ...(r.samples
      ? [
        ["sample MSE to float samples", r.samples.mse.toExponential(3)],
        ["… relative to their variance", pct(r.samples.ratio)],
      ]
      : []),
  ].map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("");
  const grids = r.floatSamples && r.quantSamples
    ? `<h3>Samples from the same noise</h3><div style="display:flex;gap:32px">` +
      `<figure>${grid(r.floatSamples)}<figcaption>float</figcaption></figure>` +
      `<figure>${grid(r.quantSamples)}<figcaption>quantized</figcaption></figure></div>`
    : "";
  return `<table>${rows}</table>` +
    `<h3>ε relative MSE per timestep (quantized vs float)</h3>${chart(r.eps.perT)}${grids}`;
}

/**
 * Renders the evaluation page.
 *
 * @param r figures and samples
 * @returns the HTML document
 *
 * @example
 * ```ts
 * import { renderDiffusionReport } from "@lowbit/diffusion";
 * const html = renderDiffusionReport({ model: "m.lowbit", float: "f.onnx",
 *   eps: { perT: [0.01, 0.001], mean: 0.0055 } });
 * if (!html.includes("<svg") || !html.includes("0.550 %")) throw new Error();
 * ```
 */
export function renderDiffusionReport(r: DiffusionReport): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>lowbit diffusion eval: ${
    esc(r.model)
  }</title><style>body{font-family:sans-serif;margin:24px}th{text-align:left;padding-right:16px}` +
    `</style></head><body><h1>Diffusion evaluation</h1>${diffusionReportBody(r)}</body></html>\n`;
}

/**
 * The self-contained HTML report of one quantize run: summary (size,
 * accuracy, SQNR, latency), the plan as a table, per-layer SQNR, and per-layer
 * weight and activation histograms with the chosen ranges, drawn by the
 * inlined Chart.js. When every chart has drawn, a script sets
 * `data-charts-rendered` on `<body>` to the number of non-blank charts and
 * `data-chart-checks` to what each chart shows (axes, datasets), which the
 * headless-browser test reads. Accuracy and size have their own axes; histograms
 * have log counts with the values outside the chosen range marked; the search
 * chart shows the budget line and the chosen point.
 *
 * @module
 */

import type { PlanEntry } from "../plan.ts";
import type { Histogram } from "./histogram.ts";
import { formatBytes, formatPercent } from "./units.ts";

/** One tensor's distribution and the range quantization keeps. */
export interface ReportTensor {
  /** Format name. */
  format: string;
  /** Granularity, as text. */
  granularity: string;
  /** Histogram of the float values. */
  hist: Histogram;
  /** The representable range chosen (envelope over channels), or null when dynamic. */
  range: [number, number] | null;
}

/** One layer in the report. */
export interface ReportLayer {
  /** Node name. */
  node: string;
  /** Operator. */
  op: string;
  /** Weight parameters. */
  params: number;
  /** Weight distribution, or null when left in float. */
  weight: ReportTensor | null;
  /** Input-activation distribution, or null when left in float. */
  activation: ReportTensor | null;
  /** SQNR (dB) of this layer's output, quantized model vs float, or null. */
  sqnrDb: number | null;
}

/** Model-level figures. */
export interface ReportSummary {
  /** Bytes of weights before. */
  sizeFloatBytes: number;
  /** Bytes of weights after (codes + scales). */
  sizeQuantBytes: number;
  /** Samples evaluated. */
  samples: number;
  /** Top-1 of the float model (0..1), null without labels. */
  top1Float: number | null;
  /** Top-1 of the quantized model. */
  top1Quant: number | null;
  /** Fraction of samples where both agree on the top class. */
  top1Agreement: number | null;
  /** Output SQNR in dB. */
  sqnrDb: number;
  /** Output cosine similarity. */
  cosine: number;
  /** Bytes on disk of the input model file and of the written model file, when known. */
  fileBytes?: { floatModel: number; quantModel: number };
  /** Mean latency per batch of the float model on our runtime (ms). */
  latencyMsFloat: number;
  /** Same for the quantized model. */
  latencyMsQuant: number;
}

/** The mixed-precision search's frontier, when `--preset mixed` ran. */
export interface ReportSearch {
  /** Sensitivity metric. */
  metric: string;
  /** Strategy whose choice was applied. */
  strategy: string;
  /**
   * Frontier points: average weight bits, summed sensitivity and, for measured
   * points, weight size (bytes) and output SQNR (dB). With SQNRs the chart
   * shows SQNR against size, else summed sensitivity against average bits.
   */
  points: { avgBits: number; score: number; sizeBytes?: number; sqnrDb?: number | null }[];
  /** The budgets the search was given (drawn as lines where they match an axis). */
  budgets?: { kind: "bits" | "size" | "latency" | "bops"; value: number }[];
  /** Each strategy's choice on the same axes. */
  choices: {
    strategy: string;
    avgBits: number;
    score: number;
    sizeBytes?: number;
    sqnrDb?: number | null;
  }[];
}

/** Everything the report shows. */
export interface ReportData {
  /** Title line. */
  title: string;
  /** ISO time of the run. */
  createdAt: string;
  /** Model name and hash. */
  model: { name: string; sha256: string };
  /** Preset, if any. */
  preset: string | null;
  /** Where the quantized model went. */
  output: string;
  /** Plan entries. */
  plan: PlanEntry[];
  /** Layers. */
  layers: ReportLayer[];
  /** Summary figures. */
  summary: ReportSummary;
  /** Warnings of the run. */
  warnings: string[];
  /** The mixed-precision search's frontier, if it ran. */
  search?: ReportSearch;
  /** Sections plugins added (`registry.reportSections`), in registration order. */
  sections?: { title: string; html: string }[];
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function planRow(e: PlanEntry): string {
  const g = e.granularity
    ? e.granularity.kind === "tensor"
      ? "tensor"
      : e.granularity.kind === "channel"
      ? `channel(axis ${e.granularity.axis})`
      : e.granularity.kind === "row"
      ? `row(axis ${e.granularity.axis})`
      : `${e.granularity.kind}(axis ${e.granularity.axis}, ${e.granularity.size})`
    : "";
  const scales = e.scale
    ? `${e.scale.length} × [${Math.min(...e.scale).toPrecision(3)} … ${
      Math.max(...e.scale).toPrecision(3)
    }]`
    : e.dynamic
    ? "dynamic"
    : "";
  return `<tr${e.skip ? ' class="skip"' : ""}><td>${esc(e.node)}</td><td>${e.role}</td><td>${
    esc(e.value)
  }</td><td>${e.skip ? "float (skip)" : esc(e.format ?? "")}</td><td>${esc(g)}</td><td>${
    e.mode ?? ""
  }</td><td>${esc(e.calibrator ?? e.rounding ?? "")}</td><td>${scales}</td><td>${
    esc(e.reason ?? "")
  }</td></tr>`;
}

/** Whether the search data carries measured output SQNRs and sizes to plot. */
function sqnrFrontier(s: ReportSearch): boolean {
  return s.points.some((p) => typeof p.sqnrDb === "number" && typeof p.sizeBytes === "number");
}

/**
 * Renders the report to one HTML string with Chart.js inlined.
 *
 * @param data what to show
 * @param chartJs Chart.js's UMD source (see `loadChartJs`)
 * @returns the HTML document
 *
 * @example
 * ```ts
 * import { renderReport } from "@lowbit/pipeline";
 * const html = renderReport({
 *   title: "t", createdAt: "", model: { name: "m", sha256: "" }, preset: "w8a8", output: "o",
 *   plan: [], layers: [], warnings: [],
 *   summary: { sizeFloatBytes: 4, sizeQuantBytes: 1, samples: 1, top1Float: 1, top1Quant: 1,
 *     top1Agreement: 1, sqnrDb: 40, cosine: 1, latencyMsFloat: 1, latencyMsQuant: 1 },
 * }, "window.Chart = function () {};");
 * if (!html.startsWith("<!doctype html>")) throw new Error();
 * ```
 */
export function renderReport(data: ReportData, chartJs: string): string {
  const s = data.summary;
  const json = JSON.stringify(
    data.search ? { ...data, search: { ...data.search, sqnr: sqnrFrontier(data.search) } } : data,
  ).replace(/</g, "\\u003c");
  const lib = chartJs.replace(/<\/script/gi, "<\\/script");
  const layerCards = data.layers.map((l, i) =>
    `<div class="card"><h3>${esc(l.node)} <small>${esc(l.op)} · ${l.params} params${
      l.sqnrDb === null ? "" : ` · SQNR ${l.sqnrDb.toFixed(1)} dB`
    }</small></h3><div class="row">${
      l.weight
        ? `<div class="chart"><canvas id="w${i}"></canvas></div>`
        : '<div class="chart none">weights in float</div>'
    }${
      l.activation
        ? `<div class="chart"><canvas id="a${i}"></canvas></div>`
        : '<div class="chart none">activations in float</div>'
    }</div></div>`
  ).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(data.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}h3{font-size:15px;margin:4px 0}
small{color:#666;font-weight:normal}table{border-collapse:collapse;width:100%;font-size:12px}
td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left}tr.skip{color:#999}
.kpi{display:flex;gap:12px;flex-wrap:wrap}.kpi div{background:#f4f6f8;border-radius:6px;padding:8px 12px}
.kpi b{display:block;font-size:18px}.card{border:1px solid #e3e3e3;border-radius:6px;padding:8px;margin:8px 0}
.row{display:flex;gap:8px}.chart{flex:1;height:200px;position:relative}.none{color:#999;display:flex;align-items:center;justify-content:center}
.warn{color:#a60}
</style></head>
<body data-charts-expected="0" data-charts-rendered="pending">
<h1>${esc(data.title)}</h1>
<p>Model <code>${esc(data.model.name)}</code> (sha256 ${esc(data.model.sha256.slice(0, 16))}…) ·
preset <b>${esc(data.preset ?? "custom")}</b> · output <code>${esc(data.output)}</code> · ${
    esc(data.createdAt)
  }</p>
${data.warnings.map((w) => `<p class="warn">⚠ ${esc(w)}</p>`).join("\n")}
<h2>Summary</h2>
<div class="kpi">
<div>weights<b>${formatBytes(s.sizeFloatBytes)} → ${formatBytes(s.sizeQuantBytes)}</b>${
    (s.sizeFloatBytes / Math.max(1, s.sizeQuantBytes)).toFixed(2)
  }× smaller${
    s.fileBytes
      ? `<br>files on disk ${formatBytes(s.fileBytes.floatModel)} → ${
        formatBytes(s.fileBytes.quantModel)
      }`
      : ""
  }</div>
<div>top-1 float / quantized<b>${formatPercent(s.top1Float)} / ${
    formatPercent(s.top1Quant)
  }</b>agreement ${formatPercent(s.top1Agreement)} on ${s.samples} samples</div>
<div>output SQNR<b>${s.sqnrDb.toFixed(2)} dB</b>cosine ${s.cosine.toFixed(5)}</div>
<div>latency float / quantized<b>${s.latencyMsFloat.toFixed(2)} / ${
    s.latencyMsQuant.toFixed(2)
  } ms</b>per batch, our runtime</div>
</div>
<div class="row" style="margin-top:12px"><div class="chart"><canvas id="summary"></canvas></div>
<div class="chart"><canvas id="sqnr"></canvas></div></div>
${
    data.search
      ? `<h2>Mixed-precision search</h2><p>metric <b>${esc(data.search.metric)}</b>, strategy <b>${
        esc(data.search.strategy)
      }</b>: ${
        sqnrFrontier(data.search)
          ? "output SQNR on the calibration data against weight size for measured points of the size / sensitivity frontier"
          : "the frontier of average weight bits against summed sensitivity"
      }, and each strategy's choice.</p>
<div class="row"><div class="chart" style="height:280px"><canvas id="frontier"></canvas></div></div>`
      : ""
  }
${
    (data.sections ?? []).map((p) =>
      `<h2>${esc(p.title)}</h2>\n<div class="plugin-section">${p.html}</div>`
    ).join("\n")
  }
<h2>Plan</h2>
<table><thead><tr><th>node</th><th>role</th><th>tensor</th><th>format</th><th>granularity</th>
<th>mode</th><th>calibrator / rounding</th><th>scales</th><th>note</th></tr></thead><tbody>
${data.plan.map(planRow).join("\n")}
</tbody></table>
<h2>Layers: distributions and chosen ranges</h2>
${layerCards}
<script type="application/json" id="lowbit-data">${json}</script>
<script>${lib}</script>
<script>
(function () {
  const data = JSON.parse(document.getElementById("lowbit-data").textContent);
  const charts = [];
  const base = { animation: false, responsive: true, maintainAspectRatio: false,
    plugins: { legend: { labels: { boxWidth: 10 } } } };
  const checks = {};
  function histChart(id, title, t) {
    const el = document.getElementById(id);
    if (!el || !t) return;
    // Log counts: a bin of 1 outlier stays visible next to a zero spike of 10^5.
    const n = t.hist.counts.length, w = (t.hist.hi - t.hist.lo) / n;
    const pts = t.hist.counts.map((c, i) => ({ x: t.hist.lo + (i + 0.5) * w, y: c > 0 ? c : null }));
    const top = Math.max(1, ...t.hist.counts) * 2;
    const datasets = [{ label: title + " (" + t.format + ", " + t.granularity + ")", data: pts,
      stepped: "middle", fill: "start", pointRadius: 0, borderWidth: 1, spanGaps: false,
      borderColor: "#3b6ea8", backgroundColor: "rgba(59,110,168,0.25)" }];
    if (t.range) {
      const out = pts.filter((p) => p.y !== null && (p.x + w / 2 < t.range[0] || p.x - w / 2 > t.range[1]));
      datasets.push({ label: "chosen range", data: [{ x: t.range[0], y: 0.5 }, { x: t.range[0], y: top },
        { x: NaN, y: NaN }, { x: t.range[1], y: top }, { x: t.range[1], y: 0.5 }],
        borderColor: "#d0412e", borderDash: [4, 3], pointRadius: 0, borderWidth: 2, spanGaps: false });
      if (out.length) {
        datasets.push({ label: "clipped (" + out.reduce((a, p) => a + p.y, 0) + " values)", data: out,
          showLine: false, pointRadius: 5, pointStyle: "triangle", backgroundColor: "#d0412e", borderColor: "#d0412e" });
      }
    }
    charts.push(new Chart(el, { type: "line", data: { datasets }, options: { ...base,
      scales: { x: { type: "linear" },
        y: { type: "logarithmic", min: 0.5, max: top, title: { display: true, text: "count (log)" } } } } }));
    checks[id] = { y: "logarithmic", datasets: datasets.map((d) => d.label) };
  }
  const s = data.summary;
  // Accuracy and size on their own axes (left: top-1 %, right: KiB).
  const sizeSets = [{ label: "weights (KiB, right axis)", yAxisID: "size", backgroundColor: "#8da9c4",
    data: [s.sizeFloatBytes / 1024, s.sizeQuantBytes / 1024] }];
  if (s.fileBytes) {
    sizeSets.push({ label: "file on disk (KiB, right axis)", yAxisID: "size", backgroundColor: "#c9d6e3",
      data: [s.fileBytes.floatModel / 1024, s.fileBytes.quantModel / 1024] });
  }
  const accSets = s.top1Float === null ? [] : [{ label: "top-1 (%, left axis)", yAxisID: "acc",
    backgroundColor: "#5b8c5a", data: [s.top1Float * 100, (s.top1Quant ?? 0) * 100] }];
  charts.push(new Chart(document.getElementById("summary"), { type: "bar", data: {
    labels: ["float", "quantized"], datasets: [...accSets, ...sizeSets] }, options: { ...base, scales: {
      acc: { type: "linear", position: "left", min: 0, max: 100, display: accSets.length > 0,
        title: { display: true, text: "top-1 (%)" } },
      size: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
        title: { display: true, text: "size (KiB)" } } } } }));
  checks.summary = { axes: [accSets.length ? "acc:left" : null, "size:right"].filter(Boolean),
    datasets: [...accSets, ...sizeSets].map((d) => d.label) };
  charts.push(new Chart(document.getElementById("sqnr"), { type: "bar", data: {
    labels: data.layers.map((l) => l.node),
    datasets: [{ label: "layer output SQNR (dB)", data: data.layers.map((l) => l.sqnrDb ?? 0),
      backgroundColor: "#5b8c5a" }] }, options: base }));
  if (data.search) {
    // x: weight size (KB) when SQNRs were measured and no bits budget is set, else average bits;
    // y: output SQNR when measured, else summed sensitivity. Budgets on the x axis are drawn.
    const sq = data.search.sqnr, budgets = data.search.budgets ?? [];
    const byBits = !sq || budgets.some((b) => b.kind === "bits");
    const ok = (p) => !sq || (typeof p.sqnrDb === "number" && typeof p.sizeBytes === "number");
    const pt = (p) => ({ x: byBits ? p.avgBits : p.sizeBytes / 1024, y: sq ? p.sqnrDb : p.score });
    const pts = data.search.points.filter(ok).map(pt);
    const applied = data.search.choices.find((c) => c.strategy === data.search.strategy && ok(c));
    const ys = [...pts, ...data.search.choices.filter(ok).map(pt)].map((p) => p.y);
    const lo = Math.min(...ys), hi = Math.max(...ys);
    const palette = ["#5b8c5a", "#8e44ad", "#e08e0b", "#2c7fb8"];
    const datasets = [
      { label: sq ? "frontier (measured)" : "frontier", data: pts, showLine: true,
        borderColor: "#3b6ea8", backgroundColor: "#3b6ea8", pointRadius: 3 },
      ...data.search.choices.filter((c) => ok(c) && c !== applied).map((c, i) => ({
        label: c.strategy, data: [pt(c)], pointRadius: 6, pointStyle: "rectRot",
        backgroundColor: palette[i % palette.length] })),
    ];
    if (applied) {
      datasets.push({ label: "chosen (" + applied.strategy + ")", data: [pt(applied)], pointRadius: 11,
        pointStyle: "star", borderWidth: 3, borderColor: "#d0412e", backgroundColor: "#d0412e" });
    }
    for (const b of budgets) {
      const x = b.kind === "bits" && byBits ? b.value : b.kind === "size" && !byBits ? b.value / 1024 : null;
      if (x === null) continue;
      datasets.push({ label: "budget " + (b.kind === "bits" ? b.value + " bits" : (b.value / 1024).toFixed(2) + " KB"),
        data: [{ x, y: lo }, { x, y: hi }], showLine: true, pointRadius: 0, borderDash: [6, 4],
        borderWidth: 2, borderColor: "#d0412e" });
    }
    charts.push(new Chart(document.getElementById("frontier"), { type: "scatter", data: { datasets },
      options: { ...base, scales: {
        x: { title: { display: true, text: byBits ? "average weight bits" : "weight size (KB)" } },
        y: { title: { display: true, text: sq ? "output SQNR (dB)" : "summed sensitivity" } } } } }));
    checks.frontier = { x: byBits ? "bits" : "size", datasets: datasets.map((d) => d.label) };
  }
  data.layers.forEach((l, i) => {
    histChart("w" + i, "weights", l.weight);
    histChart("a" + i, "activations", l.activation);
  });
  document.body.dataset.chartsExpected = String(charts.length);
  document.body.dataset.chartChecks = JSON.stringify(checks);
  requestAnimationFrame(() => {
    let drawn = 0;
    for (const c of charts) {
      const px = c.ctx.getImageData(0, 0, c.canvas.width, c.canvas.height).data;
      let ink = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) { ink++; if (ink > 50) break; }
      if (ink > 50) drawn++;
    }
    document.body.dataset.chartsRendered = String(drawn);
  });
})();
</script>
</body></html>
`;
}

/**
 * The quantize page's script: takes the dropped (or chosen) files, sends them to the worker
 * (`worker.js`, the lowbit pipeline), shows progress, then the summary, the report and the
 * download links. The page fetches only its own files (`worker.js`, `chart.umd.min.js`); the
 * model and images never leave the browser. Bundled by `tools/bundle.ts` into
 * `dist/quantize/page.js`.
 *
 * `document.body.dataset.state` is `loading`, `idle`, `running`, `done` or `error` (tests wait
 * on it); `document.body.dataset.phases` lists the progress phases shown.
 *
 * @module
 */

/// <reference lib="dom" />

import type { FlowSummary } from "./flow.ts";
import type { RunRequest, WorkerMessage } from "./worker.ts";
import { formatBytes, formatPercent } from "../../libs/pipeline/report/units.ts";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

const state = (s: string): void => {
  document.body.dataset.state = s;
};
const status = (text: string, error = false): void => {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
};

let files: File[] = [];
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
const chartJs = fetch(new URL("./chart.umd.min.js", import.meta.url)).then((r) => {
  if (!r.ok) throw new Error(`chart.umd.min.js: HTTP ${r.status}`);
  return r.text();
});
const urls: string[] = [];

function isOnnx(f: File): boolean {
  return f.name.toLowerCase().endsWith(".onnx");
}

function isImage(f: File): boolean {
  return /\.(png|jpe?g)$/i.test(f.name);
}

function setFiles(list: FileList | File[]): void {
  files = [...list].filter((f) => isOnnx(f) || isImage(f));
  const models = files.filter(isOnnx);
  const images = files.filter(isImage);
  $("files-list").textContent = files.length === 0
    ? "No ONNX model or images among those files."
    : `${models.map((f) => f.name).join(", ") || "no .onnx model"} · ${images.length} image(s)`;
  const ok = models.length === 1 && images.length > 0;
  ($("go") as HTMLButtonElement).disabled = !ok;
  if (!ok && files.length > 0) {
    status(models.length > 1 ? "Drop one .onnx model only." : "Drop one .onnx model and images.");
  } else if (ok) status("Ready.");
}

function numbers(id: string): number[] {
  const text = ($(id) as HTMLInputElement).value;
  const v = text.split(",").map((s) => Number(s.trim()));
  if (v.length === 0 || !v.every(Number.isFinite)) {
    throw new Error(`${id}: '${text}' is not numbers`);
  }
  return v;
}

function row(table: HTMLElement, cells: (string | number)[], id?: string): void {
  const tr = document.createElement("tr");
  if (id) tr.id = id;
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    td.textContent = String(c);
    if (i > 0 && typeof c === "number") td.className = "num";
    tr.append(td);
  });
  table.append(tr);
}

function link(id: string, blob: Blob, name: string): void {
  const a = $(id) as HTMLAnchorElement;
  const url = URL.createObjectURL(blob);
  urls.push(url);
  a.href = url;
  a.download = name;
}

function show(summary: FlowSummary, model: ArrayBuffer, report: string): void {
  for (const u of urls.splice(0)) URL.revokeObjectURL(u);
  const e = summary.evaluation;
  const figures = $("figures");
  figures.replaceChildren();
  row(figures, ["Model", `${summary.input.name} → ${summary.output.name}`]);
  row(figures, ["Preset", summary.preset]);
  row(figures, [
    "Model file",
    `${formatBytes(summary.input.bytes)} → ${formatBytes(summary.output.bytes)}`,
  ], "fig-files");
  row(figures, [
    "Weights",
    `${formatBytes(summary.weightBytes.float)} → ${formatBytes(summary.weightBytes.quant)}`,
  ]);
  row(figures, ["Output SQNR vs float", `${e.sqnr_db.toFixed(2)} dB`], "fig-sqnr");
  row(figures, ["Top-1 agreement with float", formatPercent(e.top1_agreement)], "fig-agreement");
  row(figures, ["Cosine", e.cosine.toFixed(6)]);
  row(figures, ["Images (calibration and evaluation)", String(summary.images)]);
  row(figures, ["Report", formatBytes(summary.reportBytes)]);
  figures.querySelector("#fig-sqnr td:last-child")!.classList.add("big");
  const body = $("layers").querySelector("tbody")!;
  body.replaceChildren();
  for (const l of summary.layers) {
    row(body, [
      l.node,
      l.op,
      l.weight,
      l.activation,
      l.sqnrDb === null ? "–" : l.sqnrDb.toFixed(2),
    ]);
  }
  const warnings = $("warnings");
  warnings.replaceChildren();
  for (const w of summary.warnings) {
    const p = document.createElement("p");
    p.textContent = `warning: ${w}`;
    warnings.append(p);
  }
  const reportBlob = new Blob([report], { type: "text/html" });
  link(
    "download-model",
    new Blob([model], { type: "application/octet-stream" }),
    summary.output.name,
  );
  link("download-report", reportBlob, summary.output.name.replace(/\.[^.]+$/, ".report.html"));
  const frame = $("report-frame") as HTMLIFrameElement;
  const reportUrl = URL.createObjectURL(reportBlob);
  urls.push(reportUrl);
  frame.src = reportUrl;
  frame.hidden = false;
  $("summary").hidden = false;
}

worker.onmessage = (ev: MessageEvent<WorkerMessage>) => {
  const m = ev.data;
  const bar = $("bar") as HTMLProgressElement;
  if (m.type === "ready") {
    const sel = $("preset") as HTMLSelectElement;
    for (const p of m.presets) sel.append(new Option(p, p, p === "w8a8", p === "w8a8"));
    state("idle");
    status("Drop an ONNX model and images.");
    setFiles(files);
  } else if (m.type === "progress") {
    // The phases seen, for tests: "calibrate weights evaluate".
    const seen = new Set((document.body.dataset.phases ?? "").split(" ").filter(Boolean));
    document.body.dataset.phases = [...seen.add(m.label)].join(" ");
    bar.max = Math.max(1, m.total);
    bar.value = m.done;
    status(`${m.label}: ${m.done} / ${m.total}`);
  } else if (m.type === "step") {
    status(`accuracy guard: ${m.message}`);
  } else if (m.type === "done") {
    bar.value = bar.max;
    show(m.summary, m.model, m.report);
    status(`Done: ${m.summary.output.name}, ${m.summary.evaluation.sqnr_db.toFixed(2)} dB.`);
    state("done");
    ($("go") as HTMLButtonElement).disabled = false;
  } else if (m.type === "error") {
    status(`Error: ${m.message}`, true);
    state("error");
    ($("go") as HTMLButtonElement).disabled = false;
  }
};
worker.onerror = (e) => {
  status(`Error: the worker failed: ${e.message}`, true);
  state("error");
};

async function start(): Promise<void> {
  const model = files.find(isOnnx)!;
  const images = files.filter(isImage).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  const req: RunRequest = {
    type: "run",
    name: model.name,
    onnx: await model.arrayBuffer(),
    images: await Promise.all(
      images.map(async (f) => ({ name: f.name, bytes: await f.arrayBuffer() })),
    ),
    preset: ($("preset") as HTMLSelectElement).value,
    format: ($("format") as HTMLSelectElement).value as "lowbit" | "onnx",
    mean: numbers("mean"),
    std: numbers("std"),
    chartJs: await chartJs,
  };
  worker.postMessage(req, [req.onnx, ...req.images.map((i) => i.bytes)]);
}

$("go").addEventListener("click", () => {
  ($("go") as HTMLButtonElement).disabled = true;
  document.body.dataset.phases = "";
  $("summary").hidden = true;
  state("running");
  status("Starting…");
  start().catch((e) => {
    status(`Error: ${e instanceof Error ? e.message : String(e)}`, true);
    state("error");
    ($("go") as HTMLButtonElement).disabled = false;
  });
});
$("files").addEventListener("change", (e) => setFiles((e.target as HTMLInputElement).files ?? []));
const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  setFiles(e.dataTransfer?.files ?? []);
});

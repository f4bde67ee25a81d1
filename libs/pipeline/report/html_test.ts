import assert from "node:assert/strict";
import { renderReport, type ReportData } from "./html.ts";
import { histogram } from "./histogram.ts";
import { loadChartJs } from "./chartjs.ts";
import { createRng } from "@lowbit/core";
import { findChromium, headlessArgs } from "../../../tools/chromium.ts";

function sample(): ReportData {
  const rng = createRng(1);
  const w = new Float32Array(500).map(() => rng.normal() * 0.1);
  const a = new Float32Array(500).map(() => Math.max(0, rng.normal()));
  return {
    title: "lowbit report <test>",
    createdAt: "2026-01-01T00:00:00Z",
    model: { name: "cnn.onnx", sha256: "ab".repeat(32) },
    preset: "w8a8",
    output: "out/cnn.w8a8.onnx",
    plan: [
      {
        node: "conv1",
        value: "w",
        role: "weight",
        format: "int8",
        granularity: { kind: "channel", axis: 0 },
        mode: "symmetric",
        rounding: "rtn",
        scale: [0.01, 0.02],
        zeroPoint: [0, 0],
      },
      { node: "fc", value: "fc.w", role: "weight", skip: true, reason: "rule 1 'fc'" },
    ],
    layers: [
      {
        node: "conv1",
        op: "Conv",
        params: 500,
        sqnrDb: 35,
        weight: { format: "int8", granularity: "channel", hist: histogram(w), range: [-0.3, 0.3] },
        activation: { format: "int8", granularity: "tensor", hist: histogram(a), range: [0, 3] },
      },
      { node: "fc", op: "Gemm", params: 100, sqnrDb: null, weight: null, activation: null },
    ],
    summary: {
      sizeFloatBytes: 2400,
      sizeQuantBytes: 700,
      samples: 497,
      top1Float: 0.98,
      top1Quant: 0.975,
      top1Agreement: 0.99,
      sqnrDb: 30.5,
      cosine: 0.9995,
      latencyMsFloat: 3.2,
      latencyMsQuant: 2.1,
    },
    warnings: ["rule 3 'head*' matches no quantizable node"],
  };
}

/**
 * Opens an HTML file in headless Chromium and returns the DOM after scripts ran.
 */
async function dumpDom(chromium: string, htmlPath: string): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "lowbit-chromium-" });
  try {
    const out = await new Deno.Command(chromium, {
      args: [
        ...headlessArgs(profile),
        "--virtual-time-budget=10000",
        "--window-size=1200,3000",
        "--dump-dom",
        `file://${htmlPath}`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(out.stdout);
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

Deno.test("renderReport() escapes names and needs no network", async () => {
  const html = renderReport(sample(), await loadChartJs());
  assert.ok(html.includes("lowbit report &#60;test&#62;"));
  assert.ok(!/<script[^>]+src=/i.test(html), "no external scripts");
  assert.ok(!/<link[^>]+href=/i.test(html), "no external styles");
  assert.ok(html.includes("float (skip)"));
});

Deno.test({
  name: "renderReport() charts render in headless Chromium",
  ignore: findChromium() === undefined && Deno.env.get("CI") !== "true",
  sanitizeResources: false,
  // summary + per-layer SQNR + weight and activation histograms of conv1
  fn: () => assertChartsRender(sample(), 4),
});

function withSearch(sqnr: boolean): ReportData {
  const at = (avgBits: number, score: number, sizeBytes: number, sqnrDb: number) =>
    sqnr ? { avgBits, score, sizeBytes, sqnrDb } : { avgBits, score };
  return {
    ...sample(),
    search: {
      metric: "layer-hessian",
      strategy: "ilp",
      points: [at(2, 9, 150, 8), { avgBits: 3, score: 4 }, at(4, 2, 300, 19), at(8, 0.1, 600, 41)],
      choices: [{ strategy: "ilp", ...at(4, 2, 300, 19) }, {
        strategy: "greedy",
        ...at(4, 2.5, 310, 17),
      }],
    },
  };
}

Deno.test("renderReport() plots output SQNR against size when frontier points carry SQNRs", async () => {
  const chartJs = await loadChartJs();
  const html = renderReport(withSearch(true), chartJs);
  assert.ok(html.includes("output SQNR on the calibration data against weight size"));
  assert.ok(html.includes('"sqnr":true'));
  const old = renderReport(withSearch(false), chartJs);
  assert.ok(old.includes("the frontier of average weight bits against summed sensitivity"));
  assert.ok(old.includes('"sqnr":false'));
});

Deno.test({
  name: "renderReport() the SQNR frontier chart renders in headless Chromium",
  ignore: findChromium() === undefined && Deno.env.get("CI") !== "true",
  sanitizeResources: false,
  // the 4 charts of sample() + the frontier
  fn: () => assertChartsRender(withSearch(true), 5),
});

/**
 * Renders `data` to a file, loads it in headless Chromium and checks that `charts` charts were
 * expected and that all of them drew pixels.
 */
async function assertChartsRender(data: ReportData, charts: number): Promise<void> {
  const chromium = findChromium();
  assert.ok(chromium, "chromium is not installed (apt-get install -y chromium)");
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/report.html`;
    await Deno.writeTextFile(path, renderReport(data, await loadChartJs()));
    const dom = await dumpDom(chromium, path);
    const expected = /data-charts-expected="(\d+)"/.exec(dom)?.[1];
    const rendered = /data-charts-rendered="([^"]+)"/.exec(dom)?.[1];
    assert.equal(expected, String(charts));
    assert.equal(rendered, String(charts), `only ${rendered} of ${expected} charts drew`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

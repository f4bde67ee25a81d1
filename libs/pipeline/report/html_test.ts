import assert from "node:assert/strict";
import { renderReport, type ReportData } from "./html.ts";
import { histogram } from "./histogram.ts";
import { loadChartJs } from "./chartjs.ts";
import { createRng } from "@lowbit/core";
import { findChromium, headlessArgs } from "../../../tools/chromium.ts";

function sample(): ReportData {
  const rng = createRng(1);
  const w = new Float32Array(500).map(() => rng.normal() * 0.1);
  // A ReLU output: a zero spike, a bulk, and 3 outliers far beyond the chosen range.
  const a = new Float32Array(5000).map(() => Math.max(0, rng.normal() * 0.5));
  a.set([9, 11, 12], 0);
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
        weight: { format: "int8", granularity: "channel", hist: histogram(w), range: [-0.5, 0.5] },
        activation: { format: "int8", granularity: "tensor", hist: histogram(a), range: [0, 3] },
      },
      { node: "fc", op: "Gemm", params: 100, sqnrDb: null, weight: null, activation: null },
    ],
    summary: {
      sizeFloatBytes: 2400,
      sizeQuantBytes: 700,
      fileBytes: { floatModel: 3100, quantModel: 1900 },
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
 * Opens an HTML file in headless Chromium and returns the DOM after scripts ran; with
 * `screenshot`, also writes a PNG of the page there.
 */
async function dumpDom(chromium: string, htmlPath: string, screenshot?: string): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "lowbit-chromium-" });
  try {
    const run = (extra: string[]) =>
      new Deno.Command(chromium, {
        args: [
          ...headlessArgs(profile),
          "--virtual-time-budget=10000",
          "--window-size=1200,2200",
          "--hide-scrollbars",
          ...extra,
          `file://${htmlPath}`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
    if (screenshot) await run([`--screenshot=${screenshot}`]);
    return new TextDecoder().decode((await run(["--dump-dom"])).stdout);
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
  fn: async () => {
    const c = await assertChartsRender(sample(), 4, "report");
    // Accuracy and size on separate axes, both file and weight sizes shown.
    assert.deepEqual(c.summary.axes, ["acc:left", "size:right"]);
    assert.deepEqual(c.summary.datasets, [
      "top-1 (%, left axis)",
      "weights (KiB, right axis)",
      "file on disk (KiB, right axis)",
    ]);
    // Log counts, and the 3 activation outliers beyond the range [0, 3] marked.
    assert.equal(c.w0.y, "logarithmic");
    assert.equal(c.a0.y, "logarithmic");
    assert.ok(c.a0.datasets.includes("clipped (3 values)"), c.a0.datasets.join());
    assert.ok(!c.w0.datasets.some((d) => d.startsWith("clipped")), c.w0.datasets.join());
  },
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
      budgets: [{ kind: "size", value: 320 }],
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
  fn: async () => {
    const c = await assertChartsRender(withSearch(true), 5, "report-search");
    assert.equal(c.frontier.x, "size");
    assert.deepEqual(c.frontier.datasets, [
      "frontier (measured)",
      "greedy",
      "chosen (ilp)",
      "budget 0.31 KB",
    ]);
  },
});

/**
 * Renders `data` to a file, loads it in headless Chromium and checks that `charts` charts were
 * expected and that all of them drew pixels; returns what each chart shows. A screenshot of the
 * page goes to `$LOWBIT_REPORT_SCREENSHOT_DIR/<name>.png` when that is set (to look at it).
 */
async function assertChartsRender(
  data: ReportData,
  charts: number,
  name = "report",
): Promise<Record<string, { y?: string; x?: string; axes?: string[]; datasets: string[] }>> {
  const chromium = findChromium();
  assert.ok(chromium, "chromium is not installed (apt-get install -y chromium)");
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/report.html`;
    await Deno.writeTextFile(path, renderReport(data, await loadChartJs()));
    const shotDir = Deno.env.get("LOWBIT_REPORT_SCREENSHOT_DIR");
    const shot = shotDir ? `${shotDir}/${name}.png` : undefined;
    const dom = await dumpDom(chromium, path, shot);
    const expected = /data-charts-expected="(\d+)"/.exec(dom)?.[1];
    const rendered = /data-charts-rendered="([^"]+)"/.exec(dom)?.[1];
    assert.equal(expected, String(charts));
    assert.equal(rendered, String(charts), `only ${rendered} of ${expected} charts drew`);
    if (shot) {
      const png = await Deno.readFile(shot);
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "not a PNG");
    }
    const checks = /data-chart-checks="([^"]+)"/.exec(dom)?.[1] ?? "{}";
    return JSON.parse(checks.replace(/&quot;/g, '"').replace(/&amp;/g, "&"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

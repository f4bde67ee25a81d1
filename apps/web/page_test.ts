// The in-browser quantize page end to end in headless Chromium, driven over the DevTools
// protocol as a user would: the page is built (`bundleQuantizePage`) and served on 127.0.0.1;
// the digits CNN and 24 PNG images made here from fixtures/digits/eval_x.npy are set on its file
// input (DOM.setFileInputFiles), the preset picked and the button clicked. Checked against
// `lowbit quantize` of the same model on the same PNG folder (`--calib` = `--eval`, the same
// preprocessing): the page's SQNR and top-1 agreement are the CLI's, its layer formats the CLI's,
// and the model it offers for download gives `lowbit run` the CLI model's outputs exactly. A
// screenshot of the summary must show it (not blank), and the page may fetch only its own files.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import pngjs from "pngjs";
import * as esbuild from "esbuild";
import { readNpy, writeNpy } from "@lowbit/graph";
import { bundleQuantizePage } from "../../tools/bundle.ts";
import { connectCdp, findChromium, launchChromium, servePage } from "../../tools/chromium.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CHROMIUM = findChromium();
const IMAGES = 24;

type Png = {
  data: Uint8Array;
  width: number;
  height: number;
};
const PNG = (pngjs as unknown as {
  PNG: {
    new (o: { width: number; height: number }): Png;
    sync: { write(p: Png): Uint8Array; read(b: Uint8Array): Png };
  };
}).PNG;

async function cli(args: string[]): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}apps/cli/main.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(r.success, `lowbit ${args[0]} failed: ${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout);
}

/** Gray PNGs of the first digits (pixel = round(255 · x), x in [0, 1]). */
async function writeDigits(dir: string): Promise<string[]> {
  const x = readNpy(Deno.readFileSync(`${ROOT}fixtures/digits/eval_x.npy`)).data as Float32Array;
  await Deno.mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < IMAGES; i++) {
    const png = new PNG({ width: 8, height: 8 });
    for (let p = 0; p < 64; p++) {
      const v = Math.round(255 * x[i * 64 + p]);
      png.data.set([v, v, v, 255], p * 4);
    }
    const path = `${dir}/digit_${String(i).padStart(2, "0")}.png`;
    Deno.writeFileSync(path, new Uint8Array(PNG.sync.write(png)));
    paths.push(path);
  }
  return paths;
}

async function until(what: string, ms: number, f: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface PageFigures {
  state: string;
  phases: string;
  status: string;
  figures: Record<string, string>;
  layers: string[][];
  download: string;
  model: string; // base64 of the downloaded file
  reportLoaded: boolean;
  rect: { x: number; y: number; width: number; height: number };
}

Deno.test({
  name: CHROMIUM
    ? "the quantize page quantizes the digits CNN in Chromium as lowbit quantize does"
    : "the quantize page in Chromium: skipped, chromium not found (/usr/bin/chromium)",
  ignore: CHROMIUM === undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "lowbit_page_" });
    try {
      await bundleQuantizePage(new URL(`file://${dir}/quantize/`)).finally(() => esbuild.stop());
      const images = await writeDigits(`${dir}/images`);
      Deno.copyFileSync(`${ROOT}fixtures/digits/cnn.onnx`, `${dir}/cnn.onnx`);
      // The CLI on the same files, meanwhile.
      const cliRun = cli([
        "quantize",
        `${dir}/cnn.onnx`,
        "--calib",
        `${dir}/images`,
        "--eval",
        `${dir}/images`,
        "--size",
        "8x8",
        "--channels",
        "1",
        "--layout",
        "NCHW",
        "--mean",
        "0",
        "--std",
        "1",
        "--preset",
        "w8a8",
        "--out",
        `${dir}/cli.lowbit`,
        "--json",
      ]);

      const requests: string[] = [];
      const server = servePage({
        files: (path) => {
          const f = path === "/" ? "index.html" : path.slice(1);
          if (!/^[\w.-]+$/.test(f)) return undefined;
          return Deno.readFile(`${dir}/quantize/${f}`).catch(() => undefined);
        },
        onRequest: (method, path) => requests.push(`${method} ${path}`),
      });
      const browser = await launchChromium(CHROMIUM!, server.url, {
        devtools: true,
        args: ["--window-size=1100,1400"],
      });
      let page: PageFigures;
      let shot: Png;
      try {
        const cdp = await connectCdp(browser.devtoolsPort!);
        try {
          const state = () => cdp.evaluate<string>("document.body?.dataset.state ?? ''");
          await until("the page's worker", 30_000, async () => (await state()) === "idle");
          const { root } = await cdp.send("DOM.getDocument") as { root: { nodeId: number } };
          const { nodeId } = await cdp.send("DOM.querySelector", {
            nodeId: root.nodeId,
            selector: "#files",
          }) as { nodeId: number };
          await cdp.send("DOM.setFileInputFiles", {
            nodeId,
            files: [`${dir}/cnn.onnx`, ...images],
          });
          await cdp.evaluate(`(() => {
            const s = document.getElementById("preset");
            s.value = "w8a8";
            if (s.value !== "w8a8") throw new Error("no w8a8 preset: " + s.innerHTML);
            if (document.getElementById("go").disabled) {
              throw new Error("the button is off: " + document.getElementById("files-list").textContent);
            }
            document.getElementById("go").click();
          })()`);
          await until("the summary", 180_000, async () => {
            const s = await state();
            return s === "done" || s === "error";
          });
          page = await cdp.evaluate<PageFigures>(`(async () => {
            const figures = {};
            for (const tr of document.querySelectorAll("#figures tr")) {
              figures[tr.cells[0].textContent] = tr.cells[1].textContent;
            }
            const layers = [...document.querySelectorAll("#layers tbody tr")]
              .map((tr) => [...tr.cells].map((c) => c.textContent));
            const a = document.getElementById("download-model");
            let model = "";
            if (a.href.startsWith("blob:")) {
              const b = new Uint8Array(await (await fetch(a.href)).arrayBuffer());
              let s = "";
              for (const x of b) s += String.fromCharCode(x);
              model = btoa(s);
            }
            const frame = document.getElementById("report-frame");
            await new Promise((r) => setTimeout(r, 300));
            const r = document.getElementById("summary").getBoundingClientRect();
            return {
              state: document.body.dataset.state,
              phases: document.body.dataset.phases,
              status: document.getElementById("status").textContent,
              figures, layers, download: a.download, model,
              reportLoaded: !frame.hidden && frame.src.startsWith("blob:"),
              rect: { x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height },
            };
          })()`);
          assert.equal(page.state, "done", `the page failed: ${page.status}`);
          const { data } = await cdp.send("Page.captureScreenshot", {
            format: "png",
            captureBeyondViewport: true,
            clip: { ...page.rect, scale: 1 },
          }) as { data: string };
          const png = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          // LOWBIT_PAGE_SCREENSHOT=file.png keeps it (to look at).
          const keep = Deno.env.get("LOWBIT_PAGE_SCREENSHOT");
          if (keep) Deno.writeFileSync(keep, png);
          shot = PNG.sync.read(Buffer.from(png));
        } finally {
          cdp.close();
        }
      } finally {
        await browser.close();
        await server.close();
      }

      // Only the page's own files were fetched; nothing was sent anywhere.
      const own = ["/", "/page.js", "/worker.js", "/chart.umd.min.js", "/favicon.ico"];
      for (const r of requests) assert.ok(own.map((p) => `GET ${p}`).includes(r), r);

      // The screenshot shows the summary: a sizeable box with dark text on the light page.
      assert.ok(shot.width >= 300 && shot.height >= 200, `summary ${shot.width}×${shot.height}`);
      let dark = 0;
      for (let i = 0; i < shot.width * shot.height; i++) {
        const [r, g, b] = shot.data.subarray(i * 4, i * 4 + 3);
        if (r + g + b < 3 * 128) dark++;
      }
      const frac = dark / (shot.width * shot.height);
      assert.ok(
        frac > 0.01 && frac < 0.5,
        `dark pixels in the summary: ${(frac * 100).toFixed(2)} %`,
      );

      // The figures are the CLI's.
      const want = JSON.parse(await cliRun);
      if (Deno.env.get("LOWBIT_PAGE_SCREENSHOT")) console.log(page.figures, want.evaluation);
      assert.equal(page.figures["Preset"], "w8a8");
      assert.equal(
        page.figures["Output SQNR vs float"],
        `${want.evaluation.sqnr_db.toFixed(2)} dB`,
      );
      assert.equal(
        page.figures["Top-1 agreement with float"],
        `${(want.evaluation.top1_agreement * 100).toFixed(2)} %`,
      );
      assert.equal(page.figures["Images (calibration and evaluation)"], String(IMAGES));
      assert.deepEqual(
        page.layers.map((l) => l.slice(0, 4)),
        want.layers.map((l: Record<string, string>) => [l.node, l.op, l.weight, l.activation]),
      );
      assert.ok(page.reportLoaded, "the report is shown");
      for (const phase of ["calibrate", "weights", "evaluate"]) {
        assert.ok(page.phases.split(" ").includes(phase), `progress of ${phase}: ${page.phases}`);
      }
      assert.equal(page.download, "cnn.w8a8.lowbit");
      const model = Uint8Array.from(atob(page.model), (c) => c.charCodeAt(0));
      assert.ok(page.figures["Model file"].endsWith(`→ ${(model.length / 1024).toFixed(1)} KiB`));

      // The downloaded model runs as the CLI's does.
      Deno.writeFileSync(`${dir}/page.lowbit`, model);
      const x = readNpy(Deno.readFileSync(`${ROOT}fixtures/digits/eval_x.npy`));
      Deno.writeFileSync(
        `${dir}/x.npy`,
        writeNpy({
          dtype: "float32",
          shape: [64, 1, 8, 8],
          data: (x.data as Float32Array).slice(0, 64 * 64),
        }),
      );
      const outs: Float32Array[] = [];
      for (const m of ["page", "cli"]) {
        await cli([
          "run",
          `${dir}/${m}.lowbit`,
          "--input",
          `${dir}/x.npy`,
          "--out",
          `${dir}/${m}.npy`,
        ]);
        outs.push(readNpy(Deno.readFileSync(`${dir}/${m}.npy`)).data as Float32Array);
      }
      assert.equal(outs[0].length, 640);
      assert.deepEqual(outs[0], outs[1], "the page's model and the CLI's give the same outputs");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

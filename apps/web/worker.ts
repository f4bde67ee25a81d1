/**
 * The quantize page's web worker: decodes the dropped images with the browser
 * (`createImageBitmap` + `OffscreenCanvas`, no colour conversion, no premultiplied alpha), runs
 * {@link quantizeInMemory} and posts progress and the result back. Bundled by `tools/bundle.ts`
 * into `dist/quantize/worker.js`.
 *
 * Messages in: {@link RunRequest}. Out: {@link WorkerMessage}.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { Rgba } from "../../libs/pipeline/images.ts";
import type { Progress } from "../../libs/pipeline/progress_api.ts";
import { type FlowSummary, pagePresets, quantizeInMemory } from "./flow.ts";

/** What the page asks for. */
export interface RunRequest {
  /** Always "run". */
  type: "run";
  /** The ONNX file's name. */
  name: string;
  /** Its bytes. */
  onnx: ArrayBuffer;
  /** The images: name and bytes (PNG / JPEG). */
  images: { name: string; bytes: ArrayBuffer }[];
  /** Preset. */
  preset: string;
  /** Output format. */
  format: "lowbit" | "onnx";
  /** Per-channel mean and standard deviation of the preprocessing. */
  mean: number[];
  /** See `mean`. */
  std: number[];
  /** Chart.js's UMD source (the page fetched it from beside itself). */
  chartJs: string;
}

/** What the worker posts. */
export type WorkerMessage =
  | { type: "ready"; presets: string[] }
  | { type: "progress"; label: string; done: number; total: number }
  | { type: "step"; message: string }
  | { type: "done"; summary: FlowSummary; model: ArrayBuffer; report: string }
  | { type: "error"; message: string };

function post(m: WorkerMessage, transfer: Transferable[] = []): void {
  self.postMessage(m, transfer);
}

/** The part of a browser's 2D context used here (Deno's types have no 2D canvas). */
interface Context2D {
  drawImage(image: ImageBitmap, x: number, y: number): void;
  getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
}

async function decode(img: { name: string; bytes: ArrayBuffer }): Promise<Rgba> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([img.bytes]), {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
    });
  } catch {
    throw new Error(`${img.name}: not an image this browser can decode`);
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d") as unknown as Context2D | null;
  if (ctx === null) throw new Error("this browser has no 2D OffscreenCanvas in workers");
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  bitmap.close();
  return { width: canvas.width, height: canvas.height, data: new Uint8Array(data.buffer) };
}

/** Progress as messages, at most one per bar every 50 ms (and the last). */
function progress(): Progress {
  return {
    enabled: true,
    start(label, total) {
      let done = 0, last = 0;
      const send = (force = false) => {
        const now = Date.now();
        if (!force && now - last < 50) return;
        last = now;
        post({ type: "progress", label, done, total });
      };
      send(true);
      return {
        update(n) {
          done = n;
          send();
        },
        increment(n = 1) {
          done += n;
          send();
        },
        stop() {
          done = total;
          send(true);
        },
      };
    },
  };
}

async function run(req: RunRequest): Promise<void> {
  const images: Rgba[] = [];
  for (const img of req.images) images.push(await decode(img));
  const out = await quantizeInMemory({
    onnx: new Uint8Array(req.onnx),
    name: req.name,
    images,
    mean: req.mean,
    std: req.std,
    preset: req.preset,
    format: req.format,
    chartJs: req.chartJs,
    progress: progress(),
    onStep: (message) => post({ type: "step", message }),
  });
  const bytes = out.model.slice().buffer;
  post({ type: "done", summary: out.summary, model: bytes, report: out.report }, [bytes]);
}

self.onmessage = (e: MessageEvent<RunRequest>) => {
  if (e.data?.type !== "run") return;
  run(e.data).catch((err) => {
    post({ type: "error", message: err instanceof Error ? err.message : String(err) });
  });
};

post({ type: "ready", presets: pagePresets() });

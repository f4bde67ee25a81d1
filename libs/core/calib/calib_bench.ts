/**
 * Calibrator memory benchmark (not a test): streams 1e8 values through every
 * built-in calibrator in batches and reports the peak extra memory.
 *
 * Run:
 *
 * ```sh
 * npx deno run -A --v8-flags=--expose-gc libs/core/calib/calib_bench.ts [totalValues] [batchSize]
 * ```
 *
 * Each calibrator (per tensor, and per channel with 64 channels on axis 1) runs
 * in its own process, and reports, relative to a baseline taken after the
 * batch buffer exists and a forced GC:
 * - `peak` — the largest `heapUsed + external` seen after any batch and after
 *   `result()`, garbage included (no forced collection);
 * - `retained` — `heapUsed + external` after a forced GC at the end, with the
 *   calibrator still alive (its state);
 * - `rss` — the largest resident-set growth.
 *
 * @module
 */

import { createCalibrator } from "./builtins.ts";
import { tensor } from "../tensor.ts";

const MB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

function used(): number {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

/** Fills `buf` with Laplace-ish data whose scale grows with `t` in [0, 1] (forces re-binning). */
function fill(buf: Float32Array, seed: number, t: number): void {
  let s = (seed * 2654435761) >>> 0 || 1;
  const scale = 2 ** (6 * t);
  for (let i = 0; i < buf.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const u = (s + 0.5) / 4294967296 - 0.5;
    buf[i] = -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * scale;
  }
}

interface Row {
  name: string;
  peakMB: number;
  retainedMB: number;
  rssMB: number;
  seconds: number;
}

const settle = async (): Promise<void> => {
  // ArrayBuffer backing stores are released by a concurrent sweeper: collect,
  // then let it run before reading `external`.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
};

async function run(name: string, perChannel: boolean, total: number, batch: number): Promise<Row> {
  const opts = perChannel ? { axis: 1 } : {};
  const buf = new Float32Array(batch);
  const shape = perChannel ? [batch / 64, 64] : [batch];
  fill(buf, 0, 0);
  await settle();
  const base = used(), baseRss = Deno.memoryUsage().rss;
  let peak = 0, rss = 0;
  const t0 = performance.now();
  const c = createCalibrator(name, opts);
  const batches = Math.ceil(total / batch);
  for (let b = 0; b < batches; b++) {
    fill(buf, b + 1, b / batches);
    c.observe(tensor(buf, shape));
    peak = Math.max(peak, used() - base);
    rss = Math.max(rss, Deno.memoryUsage().rss - baseRss);
  }
  const r = c.result();
  peak = Math.max(peak, used() - base);
  rss = Math.max(rss, Deno.memoryUsage().rss - baseRss);
  const seconds = (performance.now() - t0) / 1000;
  await settle();
  const retained = used() - base;
  if (r.max.length !== (perChannel ? 64 : 1)) throw new Error("bad result");
  return {
    name: `${name}${perChannel ? " per-channel(64)" : ""}`,
    peakMB: peak / MB,
    retainedMB: retained / MB,
    rssMB: rss / MB,
    seconds,
  };
}

if (import.meta.main) {
  const [first, second, third] = Deno.args;
  if (first === "--one") {
    // child process: one calibrator, clean baseline
    const [name, mode, total, batch] = Deno.args.slice(1);
    const row = await run(name, mode === "channel", Number(total), Number(batch));
    console.log(JSON.stringify(row));
  } else {
    const total = Number(first ?? 1e8);
    const batch = Number(second ?? 1 << 20);
    void third;
    console.log(`streaming ${total.toExponential()} values in batches of ${batch} per calibrator`);
    console.log("calibrator                     peak MB  retained MB  rss MB  seconds");
    const rows: Row[] = [];
    for (const name of ["minmax", "ema-minmax", "percentile", "mse", "kl"]) {
      for (const mode of ["tensor", "channel"]) {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--v8-flags=--expose-gc",
            import.meta.filename ?? new URL(import.meta.url).pathname,
            "--one",
            name,
            mode,
            String(total),
            String(batch),
          ],
          stderr: "inherit",
        }).output();
        if (!out.success) throw new Error(`benchmark of ${name} (${mode}) failed`);
        const row = JSON.parse(new TextDecoder().decode(out.stdout).trim()) as Row;
        rows.push(row);
        console.log(
          `${row.name.padEnd(30)} ${row.peakMB.toFixed(2).padStart(7)} ${
            row.retainedMB.toFixed(2).padStart(12)
          } ${row.rssMB.toFixed(1).padStart(7)} ${row.seconds.toFixed(1).padStart(8)}`,
        );
      }
    }
    const worst = Math.max(...rows.map((r) => r.peakMB));
    console.log(`worst peak: ${worst.toFixed(2)} MB (limit 50 MB) ${worst < 50 ? "OK" : "OVER"}`);
    if (worst >= 50) Deno.exit(1);
  }
}

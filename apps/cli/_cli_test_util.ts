/**
 * Test helper: runs the `lowbit` CLI in-process, capturing what it prints.
 *
 * @module
 */

import { readNpy } from "@lowbit/graph";
import { argmaxRows } from "@lowbit/pipeline";
import { runCli } from "./main.ts";

/** What one CLI run printed and returned. */
export interface CliRun {
  /** Exit code. */
  code: number;
  /** Standard output. */
  out: string;
  /** Standard error. */
  err: string;
}

/**
 * Runs the CLI in-process, capturing stdout and stderr.
 *
 * @param args the command line after `lowbit`
 * @returns exit code and output
 *
 * @example
 * ```ts
 * import { cli } from "./_cli_test_util.ts";
 * const r = await cli(["formats"]);
 * if (r.code !== 0 || !r.out.includes("int8")) throw new Error(r.err);
 * ```
 */
export async function cli(args: string[]): Promise<CliRun> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await runCli(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/**
 * Top-1 of the logits `lowbit run` wrote (a `.npy` of [samples, classes]) against integer labels
 * (a `.npy`), computed independently of `lowbit eval`.
 *
 * @param logitsPath the logits file
 * @param labelsPath the labels file
 * @returns the fraction of samples whose largest logit is the label
 *
 * @example
 * ```ts
 * import { top1OfFiles } from "./_cli_test_util.ts";
 * import { writeNpy } from "@lowbit/graph";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/y.npy`, writeNpy({ dtype: "float32", shape: [2, 2], data: Float32Array.of(1, 0, 0, 1) }));
 * await Deno.writeFile(`${dir}/l.npy`, writeNpy({ dtype: "int64", shape: [2], data: BigInt64Array.of(0n, 0n) }));
 * if (top1OfFiles(`${dir}/y.npy`, `${dir}/l.npy`) !== 0.5) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function top1OfFiles(logitsPath: string, labelsPath: string): number {
  const y = readNpy(Deno.readFileSync(logitsPath));
  const labels = readNpy(Deno.readFileSync(labelsPath)).data as BigInt64Array;
  const best = argmaxRows(y.data as Float32Array, y.shape[y.shape.length - 1]);
  let hit = 0;
  for (let i = 0; i < best.length; i++) if (BigInt(best[i]) === labels[i]) hit++;
  return hit / best.length;
}

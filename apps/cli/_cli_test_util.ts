/**
 * Test helper: runs the `lowbit` CLI in-process, capturing what it prints.
 *
 * @module
 */

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

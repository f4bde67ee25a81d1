/**
 * The charting library the report embeds: Chart.js's UMD build, read from
 * `node_modules` (installed by `npm ci`) at report time and inlined, so the
 * report needs no network.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { fileURLToPath } from "node:url";

/**
 * Reads Chart.js's minified UMD bundle from the workspace's `node_modules`.
 *
 * @param root workspace root (defaults to the one holding this file)
 * @returns the JavaScript source
 *
 * @example
 * ```ts
 * import { loadChartJs } from "@lowbit/pipeline";
 * const js = await loadChartJs();
 * if (!js.includes("Chart")) throw new Error();
 * ```
 */
export async function loadChartJs(root?: string): Promise<string> {
  const base = root ?? fileURLToPath(new URL("../../../", import.meta.url));
  const path = `${base.replace(/\/$/, "")}/node_modules/chart.js/dist/chart.umd.min.js`;
  try {
    return await Deno.readTextFile(path);
  } catch {
    throw new LowbitError(
      "IO_ERROR",
      "Chart.js is not installed; run `npm ci` in the lowbit workspace",
      { file: path },
    );
  }
}

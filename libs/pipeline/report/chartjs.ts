/**
 * The charting library the report embeds: Chart.js's UMD build, reached through an `npm:` import
 * (so Deno fetches it into `node_modules` or its own cache, as a JSR user of `@lowbit/pipeline`
 * has it) and inlined into the report, which therefore needs no network.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";

/** The Chart.js release the report is drawn with. */
const CHART_JS = "npm:chart.js@4.6.1";

/**
 * Reads Chart.js's minified UMD bundle (the file beside the package's ES module entry).
 *
 * @returns the JavaScript source
 *
 * @example
 * ```ts
 * import { loadChartJs } from "@lowbit/pipeline";
 * const js = await loadChartJs();
 * if (!js.includes("Chart")) throw new Error();
 * ```
 */
export async function loadChartJs(): Promise<string> {
  let url: URL;
  try {
    // The import makes Deno install the package; its entry resolves to a file beside the UMD.
    await import(CHART_JS);
    url = new URL("./chart.umd.min.js", import.meta.resolve(CHART_JS));
  } catch (e) {
    throw new LowbitError(
      "IO_ERROR",
      `Chart.js (${CHART_JS}) cannot be loaded: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  try {
    return await Deno.readTextFile(url);
  } catch {
    throw new LowbitError("IO_ERROR", "Chart.js's UMD bundle is missing from its package", {
      file: url.pathname,
    });
  }
}

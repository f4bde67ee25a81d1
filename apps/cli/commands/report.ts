/**
 * `lowbit report`: re-renders a quantize run's HTML report from the data it
 * embeds (or from that data saved as JSON with `--data-out`), with the
 * installed Chart.js inlined — e.g. to refresh an old report or to get the
 * figures as JSON.
 *
 * ```sh
 * lowbit report out/cnn.w8a8.report.html --out /tmp/again.html
 * lowbit report out/cnn.w8a8.report.html --data-out run.json
 * lowbit report run.json --out run.html
 * ```
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { loadChartJs, renderReport, type ReportData, writeFileAtomic } from "@lowbit/pipeline";
import type { Command } from "./_command.ts";
import { parseOptions } from "./_io.ts";

const HELP = `usage: lowbit report REPORT.html|RUN.json [--out REPORT.html] [--data-out RUN.json]

Re-renders a quantize report from the run data it embeds (or from a JSON file
written with --data-out).

  --out PATH        where to write the HTML (default: overwrite the input report)
  --data-out PATH   also write the run data as JSON
  -h, --help        this help`;

/**
 * Extracts the run data a report embeds (or parses a run JSON file).
 *
 * @param text the report's HTML or the JSON
 * @param file for messages
 * @returns the data
 *
 * @example
 * ```ts
 * import { reportDataOf } from "./report.ts";
 * const html = '<script type="application/json" id="lowbit-data">{"title":"t","layers":[],"plan":[],"summary":{}}</script>';
 * if (reportDataOf(html, "r.html").title !== "t") throw new Error();
 * ```
 */
export function reportDataOf(text: string, file: string): ReportData {
  const m = /<script type="application\/json" id="lowbit-data">([\s\S]*?)<\/script>/.exec(text);
  const json = m ? m[1] : text;
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    throw new LowbitError(
      "PARSE_ERROR",
      "not a lowbit report (no embedded run data) nor its JSON",
      { file },
    );
  }
  const d = data as Partial<ReportData>;
  if (
    !d || typeof d !== "object" || !Array.isArray(d.layers) || !Array.isArray(d.plan) || !d.summary
  ) {
    throw new LowbitError("PARSE_ERROR", "the run data lacks layers, plan or summary", { file });
  }
  return d as ReportData;
}

/**
 * Runs `lowbit report`.
 *
 * @param args arguments after `report`
 * @returns the exit code
 *
 * @example
 * ```ts
 * import { reportMain } from "./report.ts";
 * if (await reportMain(["--help"]) !== 0) throw new Error();
 * ```
 */
export async function reportMain(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    out: { type: "string" },
    "data-out": { type: "string" },
    help: { type: "boolean", short: "h" },
  }, HELP);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new LowbitError("INVALID_ARGUMENT", `need one report or run JSON\n\n${HELP}`);
  }
  const input = positionals[0];
  const text = await Deno.readTextFile(input).catch((e) => {
    throw new LowbitError("IO_ERROR", `cannot read: ${e instanceof Error ? e.message : e}`, {
      file: input,
    });
  });
  const data = reportDataOf(text, input);
  const enc = new TextEncoder();
  if (values["data-out"]) {
    await writeFileAtomic(values["data-out"], enc.encode(JSON.stringify(data, null, 2) + "\n"));
  }
  const out = values.out ??
    (input.endsWith(".html") ? input : input.replace(/\.json$/, "") + ".html");
  await writeFileAtomic(out, enc.encode(renderReport(data, await loadChartJs())));
  console.log(`lowbit report: wrote ${out}`);
  return 0;
}

/** The `report` subcommand. */
export const reportCommand: Command = {
  summary: "re-render a quantize run's HTML report from its embedded data",
  main: reportMain,
};

/**
 * `lowbit formats`: lists every registered number format, or one format's
 * value grid.
 *
 * ```sh
 * lowbit formats                      # table: name, family, bits, grid size, max, min normal, min subnormal
 * lowbit formats --values fp4_e2m1fn  # the grid, one value per line
 * lowbit formats --json               # the table as JSON (with --values: the grid as JSON)
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { defaultRegistry, getFormat, LowbitError, type NumberFormat } from "@lowbit/core";
import type { Command } from "./_command.ts";

const HELP = `usage: lowbit formats [--values NAME] [--json]

Lists every registered number format with its bits, grid size, max, min normal
and min subnormal. Parametric names (int5, uint3, fp_e3m4, fp_e2m5fn, nupes3,
ptqtp_g64, ...) are accepted by --values too.

  --values NAME  print the full value grid of NAME, one value per line
  --json         print JSON instead of text
  -h, --help     this help`;

/** One row of the listing. */
interface FormatRow {
  /** Registry name. */
  name: string;
  /** Format family. */
  family: string;
  /** Bits per element code. */
  bits: number;
  /** Bits per value including shared scales. */
  bitsPerValue: number;
  /** Number of distinct finite values of the element grid. */
  gridSize: number;
  /** Largest finite value. */
  max: number;
  /** Smallest positive normal value. */
  minNormal: number;
  /** Smallest positive value. */
  minSubnormal: number;
}

/** Describes a format as one listing row. */
function formatRow(f: NumberFormat): FormatRow {
  return {
    name: f.name,
    family: f.family,
    bits: f.bits,
    bitsPerValue: f.bitsPerValue ?? f.bits,
    gridSize: f.values().length,
    max: f.max,
    minNormal: f.minNormal,
    minSubnormal: f.minSubnormal,
  };
}

/** Short text for a number: powers of two far from 1 as 2^k. */
function num(v: number): string {
  const k = Math.log2(Math.abs(v));
  if (v !== 0 && Number.isInteger(k) && Math.abs(k) >= 10) return `${v < 0 ? "-" : ""}2^${k}`;
  return String(v);
}

function table(rows: FormatRow[]): string {
  const head = [
    "name",
    "family",
    "bits",
    "bits/value",
    "grid",
    "max",
    "min normal",
    "min subnormal",
  ];
  const cells = rows.map((r) => [
    r.name,
    r.family,
    String(r.bits),
    String(r.bitsPerValue),
    String(r.gridSize),
    num(r.max),
    num(r.minNormal),
    num(r.minSubnormal),
  ]);
  const all = [head, ...cells];
  const widths = head.map((_, j) => Math.max(...all.map((c) => c[j].length)));
  return all.map((c) => c.map((s, j) => s.padEnd(widths[j])).join("  ").trimEnd()).join("\n");
}

function parse(args: string[]): { values?: string; json: boolean; help: boolean } {
  try {
    const { values } = parseArgs({
      args,
      options: {
        values: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    return { values: values.values, json: values.json ?? false, help: values.help ?? false };
  } catch (e) {
    throw new LowbitError("INVALID_ARGUMENT", `${(e as Error).message}\n\n${HELP}`);
  }
}

/** The `lowbit formats` command. */
export const formatsCommand: Command = {
  summary: "list number formats (bits, grid size, range) or print one format's value grid",
  main(args: string[]): Promise<number> {
    const opts = parse(args);
    if (opts.help) {
      console.log(HELP);
      return Promise.resolve(0);
    }
    if (opts.values !== undefined) {
      const f = getFormat(opts.values);
      const grid = [...f.values()];
      console.log(opts.json ? JSON.stringify({ name: f.name, values: grid }) : grid.join("\n"));
      return Promise.resolve(0);
    }
    const reg = defaultRegistry();
    const rows = reg.formats.list().map((n) => formatRow(reg.formats.get(n)));
    console.log(opts.json ? JSON.stringify(rows, null, 2) : table(rows));
    return Promise.resolve(0);
  },
};

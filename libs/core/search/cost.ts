/**
 * Cost models of one (layer, candidate): size in bits (element bits × params
 * plus scale overhead per granularity), BOPs (HAWQ-V3: MACs × weight bits ×
 * activation bits), and latency looked up in a table measured on our kernels
 * per (layer shape, format) and cached on disk.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Granularity } from "../types.ts";

/** What the cost models need to know about a layer. */
export interface LayerGeometry {
  /** Weight elements. */
  params: number;
  /** Output channels (rows of the weight as out × in). */
  outChannels: number;
  /** Multiply-accumulates per input sample. */
  macs: number;
  /** A key naming the shape for the latency table, e.g. "gemm m1 k64 n32". */
  shapeKey: string;
}

/** What the cost models need to know about a candidate. */
export interface CandidateCost {
  /** Bits per weight element. */
  bits: number;
  /** Granularity of the scales. */
  granularity: Granularity;
  /** Bits per scale (32 for float32 scales, 8 for MX e8m0 / NVFP4 e4m3). */
  scaleBits: number;
  /** Bits per zero point (0 for symmetric). */
  zeroPointBits?: number;
  /** Extra bits per tensor (e.g. NVFP4's fp32 second-level scale). */
  tensorBits?: number;
  /** Activation bits for BOPs (32 when activations stay float). */
  activationBits: number;
}

/**
 * Number of scales a granularity needs.
 *
 * @param layer the layer
 * @param g the granularity
 * @returns 1 per tensor, one per output channel, or one per group
 *
 * @example
 * ```ts
 * import { scaleCount } from "@lowbit/core";
 * const l = { params: 64, outChannels: 4, macs: 64, shapeKey: "k" };
 * if (scaleCount(l, { kind: "group", axis: 1, size: 8 }) !== 8) throw new Error();
 * ```
 */
export function scaleCount(layer: LayerGeometry, g: Granularity): number {
  if (g.kind === "tensor" || g.kind === "row") return 1;
  if (g.kind === "channel") return layer.outChannels;
  const perRow = layer.params / layer.outChannels;
  return layer.outChannels * Math.ceil(perRow / g.size);
}

/**
 * Storage of a quantized weight in bits.
 *
 * @param layer the layer
 * @param c the candidate
 * @returns bits × params + scales × (scale bits + zero-point bits) + per-tensor bits
 *
 * @example
 * ```ts
 * import { sizeBits } from "@lowbit/core";
 * const l = { params: 64, outChannels: 4, macs: 64, shapeKey: "k" };
 * const b = sizeBits(l, { bits: 4, granularity: { kind: "channel", axis: 0 }, scaleBits: 32, activationBits: 32 });
 * if (b !== 64 * 4 + 4 * 32) throw new Error(String(b));
 * ```
 */
export function sizeBits(layer: LayerGeometry, c: CandidateCost): number {
  return layer.params * c.bits +
    scaleCount(layer, c.granularity) * (c.scaleBits + (c.zeroPointBits ?? 0)) +
    (c.tensorBits ?? 0);
}

/**
 * Bit operations per sample (HAWQ-V3): MACs × weight bits × activation bits.
 *
 * @param layer the layer
 * @param c the candidate
 * @returns BOPs
 *
 * @example
 * ```ts
 * import { bops } from "@lowbit/core";
 * const l = { params: 64, outChannels: 4, macs: 100, shapeKey: "k" };
 * if (bops(l, { bits: 4, granularity: { kind: "tensor" }, scaleBits: 32, activationBits: 8 }) !== 3200) throw new Error();
 * ```
 */
export function bops(layer: LayerGeometry, c: CandidateCost): number {
  return layer.macs * c.bits * c.activationBits;
}

/** Measured latencies in milliseconds, keyed by layer shape and format. */
export interface LatencyTable {
  /** Where the table is cached (undefined: memory only). */
  readonly path?: string;
  /** A measured latency, or undefined. */
  get(shapeKey: string, format: string): number | undefined;
  /** Records a measurement. */
  set(shapeKey: string, format: string, ms: number): void;
  /** All entries as `"shape|format" → ms`. */
  entries(): Record<string, number>;
}

/**
 * An in-memory latency table, optionally seeded.
 *
 * @param entries `"shape|format" → ms`
 * @param path where {@link saveLatencyTable} writes it
 * @returns the table
 *
 * @example
 * ```ts
 * import { createLatencyTable } from "@lowbit/core";
 * const t = createLatencyTable();
 * t.set("gemm 64x64", "int8", 0.01);
 * if (t.get("gemm 64x64", "int8") !== 0.01) throw new Error();
 * ```
 */
export function createLatencyTable(
  entries: Record<string, number> = {},
  path?: string,
): LatencyTable {
  const m = new Map(Object.entries(entries));
  return {
    path,
    get: (s, f) => m.get(`${s}|${f}`),
    set: (s, f, ms) => void m.set(`${s}|${f}`, ms),
    entries: () => Object.fromEntries(m),
  };
}

/** Default on-disk cache of measured latencies (gitignored). */
export const DEFAULT_LATENCY_CACHE = ".lowbit-cache/latency.json";

/**
 * Loads the latency cache, or an empty table when there is none yet.
 *
 * @param path cache file (default `.lowbit-cache/latency.json`)
 * @returns the table
 *
 * @example
 * ```ts
 * import { loadLatencyTable } from "@lowbit/core";
 * const t = await loadLatencyTable("/nonexistent/latency.json");
 * if (Object.keys(t.entries()).length !== 0) throw new Error();
 * ```
 */
export async function loadLatencyTable(
  path: string = DEFAULT_LATENCY_CACHE,
): Promise<LatencyTable> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return createLatencyTable({}, path);
    throw new LowbitError("IO_ERROR", (e as Error).message, { file: path });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new LowbitError("PARSE_ERROR", "latency cache is not JSON; delete it to re-measure", {
      file: path,
    });
  }
  const entries = (json as { entries?: Record<string, number> }).entries ?? {};
  return createLatencyTable(entries, path);
}

/**
 * Writes a latency table to its cache file.
 *
 * @param table the table (its `path` is used unless `path` is given)
 * @param path cache file
 *
 * @example
 * ```ts
 * import { createLatencyTable, loadLatencyTable, saveLatencyTable } from "@lowbit/core";
 * const p = await Deno.makeTempFile();
 * const t = createLatencyTable({ "a|int8": 1 }, p);
 * await saveLatencyTable(t);
 * if ((await loadLatencyTable(p)).get("a", "int8") !== 1) throw new Error();
 * ```
 */
export async function saveLatencyTable(table: LatencyTable, path?: string): Promise<void> {
  const file = path ?? table.path ?? DEFAULT_LATENCY_CACHE;
  const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : "";
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    file,
    JSON.stringify({ version: 1, entries: table.entries() }, null, 1) + "\n",
  );
}

/**
 * Latency of a layer in a format: from the table, or measured (and recorded) on a miss.
 *
 * @param table the latency table
 * @param layer the layer
 * @param format the kernel's weight format name
 * @param measure measures the latency in ms on this machine (e.g. a kernel benchmark)
 * @returns milliseconds
 *
 * @example
 * ```ts
 * import { createLatencyTable, latencyMs } from "@lowbit/core";
 * const t = createLatencyTable();
 * const l = { params: 1, outChannels: 1, macs: 1, shapeKey: "k" };
 * if ((await latencyMs(t, l, "int8", () => 2)) !== 2 || t.get("k", "int8") !== 2) throw new Error();
 * ```
 */
export async function latencyMs(
  table: LatencyTable,
  layer: LayerGeometry,
  format: string,
  measure: () => number | Promise<number>,
): Promise<number> {
  const hit = table.get(layer.shapeKey, format);
  if (hit !== undefined) return hit;
  const ms = await measure();
  table.set(layer.shapeKey, format, ms);
  return ms;
}

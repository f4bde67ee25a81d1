/**
 * The default registry: lowbit's built-in formats, quantizers and calibrators,
 * created on first use. Plugins may register into it; tests should prefer a
 * fresh `createRegistry()`.
 *
 * @module
 */

import { createRegistry, type Registry } from "./registry.ts";
import type { NumberFormat } from "./types.ts";
import { builtinFormats, parseFormatName } from "./formats/mod.ts";
import { builtinQuantizers } from "./quant/mod.ts";
import { builtinCalibrators } from "./calib/mod.ts";
import { builtinMetrics } from "./metrics/mod.ts";
import { builtinStrategies } from "./search/mod.ts";

let instance: Registry | undefined;

/**
 * Registers every built-in entry into `registry`.
 *
 * @param registry the registry to fill
 *
 * @example
 * ```ts
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * const r = createRegistry();
 * registerBuiltins(r);
 * if (!r.formats.has("int8")) throw new Error();
 * ```
 */
export function registerBuiltins(registry: Registry): void {
  for (const f of builtinFormats()) registry.formats.register(f);
  for (const q of builtinQuantizers((n) => registry.formats.get(n))) {
    registry.quantizers.register(q);
  }
  for (const c of builtinCalibrators()) registry.calibrators.register(c);
  for (const m of builtinMetrics()) registry.metrics.register(m);
  for (const s of builtinStrategies()) registry.strategies.register(s);
}

/**
 * The process-wide registry with every built-in entry, created on first use.
 * Parametric format names ("int5", "fp_e3m4", ...) resolve on demand.
 *
 * @returns the default registry
 *
 * @example
 * ```ts
 * import { defaultRegistry } from "@lowbit/core";
 * if (!defaultRegistry().formats.has("fp8_e4m3fn")) throw new Error();
 * ```
 */
export function defaultRegistry(): Registry {
  if (!instance) {
    instance = createRegistry(parseFormatName);
    registerBuiltins(instance);
  }
  return instance;
}

/**
 * Looks a number format up in the default registry; an unknown name is a
 * `LowbitError` listing the registered formats.
 *
 * @param name format name, e.g. "int8", "fp4_e2m1fn", "mxfp4", "nvfp4"
 * @returns the format
 *
 * @example
 * ```ts
 * import { getFormat } from "@lowbit/core";
 * if (getFormat("int8").bits !== 8) throw new Error();
 * ```
 */
export function getFormat(name: string): NumberFormat {
  return defaultRegistry().formats.get(name);
}

/**
 * @lowbit/core: number formats, quantizers, calibrators, sensitivity metrics,
 * mixed-precision search and the plugin registry.
 *
 * @example
 * ```ts
 * import { createRegistry } from "@lowbit/core";
 * const registry = createRegistry();
 * if (registry.formats.list().length !== 0) throw new Error();
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./tensor.ts";
export * from "./rng.ts";
export * from "./types.ts";
export * from "./registry.ts";
export * from "./extensions.ts";
export * from "./default_registry.ts";
export * from "./quant/mod.ts";
export * from "./calib/mod.ts";
export * from "./formats/mod.ts";
export * from "./metrics/mod.ts";
export * from "./search/mod.ts";

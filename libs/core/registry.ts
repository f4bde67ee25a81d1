/**
 * The registry: named formats, quantizers, calibrators, sensitivity metrics and
 * search strategies. The only global state is the default registry, and a fresh
 * one can be created for tests or isolated pipelines.
 *
 * @module
 */

import { LowbitError } from "./errors.ts";
import type {
  CalibratorFactory,
  NumberFormat,
  Quantizer,
  SearchStrategy,
  SensitivityMetric,
} from "./types.ts";
import type {
  CalibrationHook,
  CalibrationSource,
  Inspector,
  Marker,
  PluginCommand,
  PluginOption,
  ReportSection,
  SearchGroupProvider,
  Stage,
} from "./extensions.ts";

/** A table of named entries. */
export interface Table<T extends { readonly name: string }> {
  /** Adds an entry; a duplicate name is an error. */
  register(item: T): void;
  /** Looks an entry up; an unknown name is an error listing what is registered. */
  get(name: string): T;
  /** Whether `name` is registered. */
  has(name: string): boolean;
  /** All registered names, in registration order. */
  list(): string[];
}

/** All tables of one registry. */
export interface Registry {
  /** Number formats. */
  readonly formats: Table<NumberFormat>;
  /** Quantizers. */
  readonly quantizers: Table<Quantizer>;
  /** Calibrator factories. */
  readonly calibrators: Table<CalibratorFactory>;
  /** Sensitivity metrics. */
  readonly metrics: Table<SensitivityMetric>;
  /** Search strategies. */
  readonly strategies: Table<SearchStrategy>;
  /** Quantization-point markers (which values to quantize). */
  readonly markers: Table<Marker>;
  /** Calibration sources (data from a generator, e.g. a sampler loop). */
  readonly sources: Table<CalibrationSource>;
  /** Calibration hooks (graph / input transforms, GPTQ row weights). */
  readonly hooks: Table<CalibrationHook>;
  /** Stages of the quantize flow added to the built-in ones. */
  readonly stages: Table<Stage>;
  /** Mixed-precision search groups and candidate sets. */
  readonly searchGroups: Table<SearchGroupProvider>;
  /** Command-line options plugins add. */
  readonly options: Table<PluginOption>;
  /** Commands plugins add. */
  readonly commands: Table<PluginCommand>;
  /** Sections plugins add to the HTML report. */
  readonly reportSections: Table<ReportSection>;
  /** Sections plugins add to `lowbit inspect`. */
  readonly inspectors: Table<Inspector>;
  /** Registers a plugin (once per name). */
  use(plugin: Plugin): void;
  /** Names of the plugins registered so far. */
  plugins(): string[];
  /** Name and version of each plugin registered so far. */
  pluginVersions(): { name: string; version: string }[];
}

/** A plugin: registers its entries against a registry, exactly as built-ins do. */
export interface Plugin {
  /** Unique plugin name. */
  readonly name: string;
  /** Version, recorded in the plans it helps make (semver; "0.0.0" when unversioned). */
  readonly version?: string;
  /** Adds the plugin's entries. */
  register(registry: Registry): void;
}

/**
 * Creates a table for entries of one kind.
 *
 * @param kind what the entries are, for error messages ("format", ...)
 * @param fallback optional resolver for names not registered (parametric names like "fp_e3m4")
 * @returns an empty table
 *
 * @example
 * ```ts
 * import { createTable } from "@lowbit/core";
 * const t = createTable<{ name: string }>("thing");
 * t.register({ name: "a" });
 * if (t.get("a").name !== "a") throw new Error();
 * ```
 */
export function createTable<T extends { readonly name: string }>(
  kind: string,
  fallback?: (name: string) => T | undefined,
): Table<T> {
  const items = new Map<string, T>();
  return {
    register(item: T): void {
      if (items.has(item.name)) {
        throw new LowbitError("DUPLICATE_NAME", `${kind} '${item.name}' is already registered`);
      }
      items.set(item.name, item);
    },
    get(name: string): T {
      const hit = items.get(name);
      if (hit) return hit;
      const made = fallback?.(name);
      if (made) {
        items.set(name, made);
        return made;
      }
      throw new LowbitError(
        "UNKNOWN_NAME",
        `unknown ${kind} '${name}'; registered: ${[...items.keys()].join(", ") || "(none)"}`,
      );
    },
    has(name: string): boolean {
      return items.has(name);
    },
    list(): string[] {
      return [...items.keys()];
    },
  };
}

/**
 * Creates an empty registry (no built-ins). Use {@link defaultRegistry} for one
 * with lowbit's built-in formats, quantizers and calibrators.
 *
 * @param formatFallback optional resolver for parametric format names
 * @returns the registry
 *
 * @example
 * ```ts
 * import { createRegistry } from "@lowbit/core";
 * const r = createRegistry();
 * r.use({ name: "demo", register: (reg) => reg.metrics.register({ name: "zero", score: () => 0 }) });
 * if (r.metrics.list()[0] !== "zero") throw new Error();
 * ```
 */
export function createRegistry(
  formatFallback?: (name: string) => NumberFormat | undefined,
): Registry {
  const used: { name: string; version: string }[] = [];
  const reg: Registry = {
    formats: createTable<NumberFormat>("format", formatFallback),
    quantizers: createTable<Quantizer>("quantizer"),
    calibrators: createTable<CalibratorFactory>("calibrator"),
    metrics: createTable<SensitivityMetric>("sensitivity metric"),
    strategies: createTable<SearchStrategy>("search strategy"),
    markers: createTable<Marker>("marker"),
    sources: createTable<CalibrationSource>("calibration source"),
    hooks: createTable<CalibrationHook>("calibration hook"),
    stages: createTable<Stage>("stage"),
    searchGroups: createTable<SearchGroupProvider>("search group provider"),
    options: createTable<PluginOption>("plugin option"),
    commands: createTable<PluginCommand>("command"),
    reportSections: createTable<ReportSection>("report section"),
    inspectors: createTable<Inspector>("inspector"),
    use(plugin: Plugin): void {
      if (used.some((u) => u.name === plugin.name)) {
        throw new LowbitError("DUPLICATE_NAME", `plugin '${plugin.name}' is already registered`);
      }
      plugin.register(reg);
      used.push({ name: plugin.name, version: plugin.version ?? "0.0.0" });
    },
    plugins(): string[] {
      return used.map((u) => u.name);
    },
    pluginVersions(): { name: string; version: string }[] {
      return used.map((u) => ({ ...u }));
    },
  };
  return reg;
}

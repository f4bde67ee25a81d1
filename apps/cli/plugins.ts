/**
 * Loading plugins on the command line: `--plugin NAME|PATH` (repeatable, anywhere in the
 * arguments) loads a built-in plugin by its short name or any module that exports a plugin as
 * `plugin` (a file outside the repository included), into the default registry — exactly as a
 * third-party package registers. Its options then parse like the command's own, its commands
 * run as `lowbit <command>`, and the plans it helps make record it so `--plan` replay loads it.
 *
 * @module
 */

import { defaultRegistry, LowbitError, type Plugin, type PluginOption } from "@lowbit/core";
import { readLowbitPlan } from "@lowbit/graph";
import { isLowbitPath } from "@lowbit/pipeline";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * The built-in plugins by short name: module specifiers relative to this file. A name listed in
 * {@link PLANNED_PLUGINS} but not here is not part of this build yet.
 */
const BUILTIN_PLUGINS: Readonly<Record<string, string>> = {
  vit: "../../plugins/vit/mod.ts",
  diffusion: "../../plugins/diffusion/mod.ts",
  gnn: "../../plugins/gnn/mod.ts",
  moe: "../../plugins/moe/mod.ts",
};

/** The model-family plugins lowbit ships (or will): `--plugin vit`, ... */
export const PLANNED_PLUGINS: readonly string[] = ["vit", "diffusion", "moe", "gnn"];

/** Where each loaded plugin came from, by plugin name (recorded in plans). */
const sources = new Map<string, string>();

/**
 * Splits `--plugin X` / `--plugin=X` out of the arguments.
 *
 * @param args command-line arguments
 * @returns the plugin specifiers and the remaining arguments
 *
 * @example
 * ```ts
 * import { splitPluginArgs } from "./plugins.ts";
 * const r = splitPluginArgs(["quantize", "--plugin", "./p.ts", "m.onnx", "--plugin=vit"]);
 * if (r.plugins.join() !== "./p.ts,vit" || r.rest.join() !== "quantize,m.onnx") throw new Error();
 * ```
 */
export function splitPluginArgs(args: readonly string[]): { plugins: string[]; rest: string[] } {
  const plugins: string[] = [], rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--plugin") {
      const v = args[++i];
      if (v === undefined || v.startsWith("-")) {
        throw new LowbitError("INVALID_ARGUMENT", "--plugin needs a name or a module path");
      }
      plugins.push(v);
    } else if (a.startsWith("--plugin=")) plugins.push(a.slice("--plugin=".length));
    else rest.push(a);
  }
  return { plugins, rest };
}

function isPlugin(x: unknown): x is Plugin {
  const p = x as Partial<Plugin> | undefined;
  return !!p && typeof p.name === "string" && typeof p.register === "function";
}

/**
 * Loads one plugin (a built-in short name or a module path / URL) into the default registry;
 * loading the same plugin twice does nothing.
 *
 * @param spec short name, file path or URL
 * @returns the plugin's name
 *
 * @example
 * ```ts
 * import { loadPlugin } from "./plugins.ts";
 * const e = await loadPlugin("no/such/plugin.ts").catch((e) => e);
 * if (e.code !== "IO_ERROR") throw e;
 * ```
 */
export async function loadPlugin(spec: string): Promise<string> {
  let url: string;
  let source = spec;
  if (Object.hasOwn(BUILTIN_PLUGINS, spec)) {
    url = new URL(BUILTIN_PLUGINS[spec], import.meta.url).href;
  } else if (/^[a-z][a-z0-9-]*$/.test(spec)) {
    throw new LowbitError(
      "UNKNOWN_NAME",
      PLANNED_PLUGINS.includes(spec)
        ? `the built-in plugin '${spec}' is not part of this build yet; give a module path`
        : `unknown plugin '${spec}'; built-in: ${
          Object.keys(BUILTIN_PLUGINS).join(", ") || "(none yet)"
        }; or give a module path (./my_plugin.ts)`,
    );
  } else if (/^(https?|file|npm|jsr):/.test(spec)) {
    url = spec;
  } else {
    const path = isAbsolute(spec) ? spec : resolve(spec);
    try {
      await Deno.stat(path);
    } catch {
      throw new LowbitError("IO_ERROR", "plugin module not found", { file: spec });
    }
    url = pathToFileURL(path).href;
    source = path; // absolute, so a plan replays from any folder
  }
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (e) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `cannot load the plugin module: ${e instanceof Error ? e.message.split("\n")[0] : e}`,
      { file: spec },
    );
  }
  const plugin = mod.plugin;
  if (!isPlugin(plugin)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "the module does not export a plugin as `plugin` ({ name, version, register(registry) })",
      { file: spec },
    );
  }
  const reg = defaultRegistry();
  if (!reg.plugins().includes(plugin.name)) {
    reg.use(plugin);
    sources.set(plugin.name, source);
  }
  return plugin.name;
}

/**
 * Loads every plugin named on the command line.
 *
 * @param specs short names or module paths
 * @returns the plugin names, in order
 *
 * @example
 * ```ts
 * import { loadPlugins } from "./plugins.ts";
 * if ((await loadPlugins([])).length !== 0) throw new Error();
 * ```
 */
export async function loadPlugins(specs: readonly string[]): Promise<string[]> {
  const names: string[] = [];
  for (const s of specs) names.push(await loadPlugin(s));
  return names;
}

/**
 * Where a loaded plugin came from (its `--plugin` value), for the plan.
 *
 * @param name plugin name
 * @returns the specifier, if it was loaded here
 *
 * @example
 * ```ts
 * import { pluginSource } from "./plugins.ts";
 * if (pluginSource("never-loaded") !== undefined) throw new Error();
 * ```
 */
export function pluginSource(name: string): string | undefined {
  return sources.get(name);
}

/**
 * The registered plugin options as `node:util` parseArgs options.
 *
 * @returns options by name
 *
 * @example
 * ```ts
 * import { pluginParseOptions } from "./plugins.ts";
 * if (typeof pluginParseOptions() !== "object") throw new Error();
 * ```
 */
export function pluginParseOptions(): Record<string, { type: "string" | "boolean" }> {
  const reg = defaultRegistry();
  const out: Record<string, { type: "string" | "boolean" }> = {};
  for (const n of reg.options.list()) {
    out[n] = { type: reg.options.get(n).type === "boolean" ? "boolean" : "string" };
  }
  return out;
}

/**
 * Plugin option values from parsed arguments: numbers parsed, choices checked, defaults filled.
 *
 * @param values parsed values (strings / booleans) by option name
 * @returns the values by option name
 *
 * @example
 * ```ts
 * import { pluginOptionValues } from "./plugins.ts";
 * if (Object.keys(pluginOptionValues({})).length !== 0) throw new Error();
 * ```
 */
export function pluginOptionValues(
  values: Readonly<Record<string, unknown>>,
): Record<string, string | number | boolean> {
  const reg = defaultRegistry();
  const out: Record<string, string | number | boolean> = {};
  for (const n of reg.options.list()) {
    const o: PluginOption = reg.options.get(n);
    const v = values[n];
    if (v === undefined) {
      if (o.default !== undefined) out[n] = o.default;
      continue;
    }
    if (o.type === "boolean") out[n] = v === true;
    else if (o.type === "number") {
      const x = Number(v);
      if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(x)) {
        throw new LowbitError("INVALID_ARGUMENT", `--${n} needs a number, got '${v}'`);
      }
      out[n] = x;
    } else {
      if (o.choices && !o.choices.includes(String(v))) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `--${n} must be one of ${o.choices.join(", ")}; got '${v}'`,
        );
      }
      out[n] = String(v);
    }
  }
  return out;
}

/**
 * Help text for the registered plugin options (empty without plugins).
 *
 * @returns the lines
 *
 * @example
 * ```ts
 * import { pluginHelp } from "./plugins.ts";
 * if (typeof pluginHelp() !== "string") throw new Error();
 * ```
 */
export function pluginHelp(): string {
  const reg = defaultRegistry();
  const names = reg.options.list();
  if (names.length === 0) return "";
  const lines = names.map((n) => {
    const o = reg.options.get(n);
    const arg = o.type === "boolean" ? "" : o.choices ? ` ${o.choices.join("|")}` : " VALUE";
    const dflt = o.default === undefined ? "" : ` (default ${o.default})`;
    return `  --${n}${arg}\n                        ${o.help}${dflt}`;
  });
  return `\nplugin options (${reg.plugins().join(", ")}):\n${lines.join("\n")}`;
}

/**
 * Loads the plugins a lowbit file's plan records (its quantizers come from them), so
 * `lowbit run` / `lowbit eval` of a plugin's model needs no `--plugin`. ONNX files and files
 * without plugins load nothing.
 *
 * @param path the model file
 * @returns the plugin names loaded
 *
 * @example
 * ```ts
 * import { loadPluginsOfFile } from "./plugins.ts";
 * if ((await loadPluginsOfFile("fixtures/digits/mlp.onnx")).length !== 0) throw new Error();
 * ```
 */
export async function loadPluginsOfFile(path: string): Promise<string[]> {
  if (!isLowbitPath(path)) return [];
  let plan: unknown;
  try {
    plan = readLowbitPlan(await Deno.readFile(path), path);
  } catch {
    return []; // reading the model reports what is wrong with the file
  }
  const plugins = (plan as { plugins?: { name: string; source?: string }[] } | null)?.plugins;
  const names: string[] = [];
  for (const p of plugins ?? []) {
    if (defaultRegistry().plugins().includes(p.name)) continue;
    try {
      names.push(await loadPlugin(p.source ?? p.name));
    } catch (e) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `the model was made with plugin '${p.name}', which cannot be loaded (${
          e instanceof Error ? e.message : e
        }); pass --plugin NAME|PATH`,
        { file: path },
      );
    }
  }
  return names;
}

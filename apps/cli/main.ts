/**
 * The `lowbit` command line: a thin shell over the libraries.
 *
 * ```sh
 * npx deno task lowbit <command> [args]
 * ```
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import meta from "./deno.json" with { type: "json" };

import type { Command } from "./commands/_command.ts";

export type { Command };

/** A subcommand in the table: its one-line summary (for `lowbit help`) and its loader. */
export interface CommandEntry {
  /** The same line as the command's own `summary` (a test keeps them equal). */
  summary: string;
  /** Loads the command (lazily, so that start-up stays fast). */
  load: () => Promise<Command>;
}

/** The subcommands. */
export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  quantize: {
    summary: "calibrate, quantize (RTN / GPTQ), guard, export, evaluate and report",
    load: async () => (await import("./commands/quantize.ts")).quantizeCommand,
  },
  eval: {
    summary: "compare a quantized model with its float original (SQNR, cosine, top-1, latency)",
    load: async () => (await import("./commands/eval.ts")).evalCommand,
  },
  inspect: {
    summary:
      "inputs, outputs, operators, parameters, and which layers are quantizable (and why not)",
    load: async () => (await import("./commands/inspect.ts")).inspectCommand,
  },
  run: {
    summary: "run a model on .npy inputs and write its outputs as .npy",
    load: async () => (await import("./commands/run.ts")).runCommand,
  },
  report: {
    summary: "re-render a quantize run's HTML report from its embedded data",
    load: async () => (await import("./commands/report.ts")).reportCommand,
  },
  formats: {
    summary: "list number formats (bits, grid size, range) or print one format's value grid",
    load: async () => (await import("./commands/formats.ts")).formatsCommand,
  },
  bench: {
    summary: "benchmark the GEMM kernels against onnxruntime-web",
    load: async () => (await import("./commands/bench.ts")).benchCommand,
  },
  serve: {
    summary: "serve dist/ (the in-browser quantize page, the runtime bundle) on 127.0.0.1",
    load: async () => (await import("./serve.ts")).serveCommand,
  },
};

/** This build's version (the CLI package's). */
export const VERSION: string = meta.version;

function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    `lowbit ${VERSION}: post-training quantization for neural networks`,
    "",
    "usage: lowbit <command> [args]",
    "",
    "commands:",
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`),
    "",
    "run `lowbit <command> --help` for a command's options; `lowbit --version` for the version",
  ].join("\n");
}

/**
 * Runs the CLI with `args` and returns the exit code: 0 on success, 2 on a
 * user error (bad input, with a message naming what is wrong), 1 on an internal error.
 *
 * @param args command-line arguments, without the program name
 * @returns the exit code
 *
 * @example
 * ```ts
 * import { runCli } from "@lowbit/cli";
 * const code = await runCli(["no-such-command"]);
 * if (code !== 2) throw new Error("expected a usage error");
 * ```
 */
export async function runCli(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    console.log(`lowbit ${VERSION}`);
    return 0;
  }
  try {
    const load = COMMANDS[name]?.load;
    if (!load) {
      // A plugin's command: `lowbit --plugin ./p.ts mycmd ...`, or a built-in plugin's
      // (`lowbit diffusion sample ...` loads the `diffusion` plugin).
      const { loadPlugins, PLANNED_PLUGINS, splitPluginArgs } = await import("./plugins.ts");
      const { defaultRegistry } = await import("@lowbit/core");
      const split = splitPluginArgs(args);
      await loadPlugins(split.plugins);
      const [cmdName, ...cmdArgs] = split.rest;
      if (cmdName !== undefined && Object.hasOwn(COMMANDS, cmdName)) {
        // `lowbit --plugin X quantize ...`: the command takes the plugins itself.
        const plugins = split.plugins.flatMap((p) => ["--plugin", p]);
        return await (await COMMANDS[cmdName].load()).main([...plugins, ...cmdArgs]);
      }
      if (!defaultRegistry().commands.has(cmdName ?? "") && PLANNED_PLUGINS.includes(cmdName)) {
        await loadPlugins([cmdName]);
      }
      if (cmdName !== undefined && defaultRegistry().commands.has(cmdName)) {
        return await defaultRegistry().commands.get(cmdName).main(cmdArgs);
      }
      console.error(`lowbit: unknown command '${cmdName ?? name}'\n\n${usage()}`);
      return 2;
    }
    const cmd = await load();
    return await cmd.main(rest);
  } catch (e) {
    if (e instanceof LowbitError) {
      console.error(`lowbit ${name}: error: ${e.message}`);
      return 2;
    }
    console.error(`lowbit ${name}: internal error (please report):`);
    console.error(e);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}

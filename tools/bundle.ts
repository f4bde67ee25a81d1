/**
 * `deno task bundle`: builds the runtime for browsers, web workers, Node, Deno and Cloudflare
 * workers into `dist/`:
 *
 * - `lowbit-runtime.js`: `@lowbit/session` (`loadModel`) as one minified ES module, the
 *   kernels embedded (compiled when `loadModel` gets no `wasm` option);
 * - `lowbit-worker.js`: the worker script of `threads > 1` (loaded next to the runtime);
 * - `int_gemm.wasm`, `float_gemm.wasm`: the kernels for hosts that only take precompiled
 *   modules (`loadModel(bytes, { wasm: { "int_gemm.wasm": module, ... } })`);
 * - `package.json` (`"type": "module"`, so that Node loads the `.js` files as ES modules).
 *
 * It resolves the workspace's `@lowbit/*` packages through their `deno.json` exports and npm
 * packages from `node_modules`. Two things are kept out on purpose: the LP solver (`highs`, used
 * only by the mixed-precision search, which a runtime never runs: importing it from the bundle
 * rejects with a clear error) and Node's `worker_threads` as a `node:` import (the bundle asks
 * `process.getBuiltinModule` for it, so it has no `node:` import at all). Where the host has no
 * `FinalizationRegistry` (Cloudflare workerd removes it), the bundle's references to it get one
 * that never finalizes: packed weights then stay in kernel memory for the life of the isolate
 * (the executor frees them when weight arrays are collected elsewhere). Prints the sizes.
 *
 * ```sh
 * npx deno task bundle            # writes dist/
 * npx deno task bundle --json     # and prints the sizes as JSON
 * ```
 *
 * @module
 */

import * as esbuild from "esbuild";
import { gzipSync } from "node:zlib";
import { decodeBase64 } from "../kernels/gemm/runner.ts";
import * as floatWasm from "../kernels/gemm/_float_gemm_wasm.ts";
import * as intWasm from "../kernels/gemm/_int_gemm_wasm.ts";

const ROOT = new URL("../", import.meta.url);

/** Sizes of the built files, in bytes. */
export interface BundleSizes {
  /** `lowbit-runtime.js`, minified. */
  js: number;
  /** The same, gzipped (level 9). */
  jsGzip: number;
  /** `lowbit-runtime.js` without the embedded kernels (their base64 text), gzipped. */
  codeGzip: number;
  /** `lowbit-worker.js`, minified. */
  worker: number;
  /** Each `.wasm` file. */
  wasm: Record<string, number>;
}

/** Kernel files written beside the bundle, from the same bytes the bundle embeds. */
const KERNELS: Record<string, string> = {
  "int_gemm.wasm": intWasm.single,
  "float_gemm.wasm": floatWasm.single,
};

async function readJson(url: URL): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(url));
}

/** `@lowbit/<pkg>[/sub]` → file, from the workspace members' deno.json `exports`. */
async function workspaceExports(): Promise<Map<string, string>> {
  const root = await readJson(new URL("deno.json", ROOT));
  const out = new Map<string, string>();
  for (const member of root.workspace as string[]) {
    const dir = new URL(`${member.replace(/^\.\//, "")}/`, ROOT);
    const cfg = await readJson(new URL("deno.json", dir));
    const exp = cfg.exports as Record<string, string>;
    for (const [k, v] of Object.entries(exp)) {
      out.set(`${cfg.name}${k === "." ? "" : k.slice(1)}`, new URL(v, dir).pathname);
    }
  }
  return out;
}

const EXCLUDED_HIGHS =
  `throw new Error("lowbit-runtime.js does not include the LP solver (highs): ` +
  `the mixed-precision search runs with @lowbit/pipeline, not in the runtime");`;

const FINALIZATION = `const FR = globalThis.FinalizationRegistry ?? class {
  register() {}
  unregister() { return false; }
};
export { FR as FinalizationRegistry };`;

const WORKER_THREADS = `const m = globalThis.process?.getBuiltinModule?.("worker_threads");
if (!m) throw new Error("worker_threads is unavailable (Node >= 20.16 has process.getBuiltinModule)");
export const Worker = m.Worker;
export const parentPort = m.parentPort;`;

function plugin(exports: Map<string, string>, stripKernels: boolean): esbuild.Plugin {
  return {
    name: "lowbit",
    setup(build) {
      build.onResolve({ filter: /^@lowbit\// }, (args) => {
        const path = exports.get(args.path);
        if (path === undefined) return { errors: [{ text: `unknown export ${args.path}` }] };
        return { path };
      });
      build.onResolve({ filter: /^npm:/ }, (args) => {
        const m = /^npm:(@?[^@/]+(?:\/[^@/]+)?)(?:@[^/]+)?(\/.*)?$/.exec(args.path);
        if (!m) return { errors: [{ text: `cannot resolve ${args.path}` }] };
        return build.resolve(m[1] + (m[2] ?? ""), { kind: args.kind, resolveDir: args.resolveDir });
      });
      build.onResolve({ filter: /^highs$/ }, () => ({ path: "highs", namespace: "excluded" }));
      build.onResolve(
        { filter: /^node:worker_threads$/ },
        () => ({ path: "worker_threads", namespace: "builtin" }),
      );
      build.onLoad({ filter: /.*/, namespace: "excluded" }, () => ({ contents: EXCLUDED_HIGHS }));
      build.onLoad({ filter: /.*/, namespace: "builtin" }, () => ({ contents: WORKER_THREADS }));
      build.onResolve({ filter: /^lowbit:finalization$/ }, () => ({
        path: "finalization",
        namespace: "shim",
      }));
      build.onLoad({ filter: /.*/, namespace: "shim" }, () => ({ contents: FINALIZATION }));
      // The pool's worker script is the bundled lowbit-worker.js beside the runtime.
      build.onLoad({ filter: /libs\/runtime\/pool\.ts$/ }, async (args) => {
        const src = await Deno.readTextFile(args.path);
        if (!src.includes(`new URL("./worker.ts", import.meta.url)`)) {
          return {
            errors: [{ text: "pool.ts no longer names ./worker.ts: update tools/bundle.ts" }],
          };
        }
        return {
          contents: src.replace(
            `new URL("./worker.ts", import.meta.url)`,
            `new URL("./lowbit-worker.js", import.meta.url)`,
          ),
          loader: "ts",
        };
      });
      if (stripKernels) {
        // Measurement only: the embedded kernels' base64 replaced by empty strings.
        build.onLoad({ filter: /kernels\/gemm\/_[a-z_]+_wasm\.ts$/ }, () => ({
          contents: `export const single = ""; export const shared = "";`,
          loader: "ts",
        }));
      }
    },
  };
}

async function build(
  entry: string,
  exports: Map<string, string>,
  stripKernels = false,
): Promise<Uint8Array> {
  const r = await esbuild.build({
    entryPoints: [new URL(entry, ROOT).pathname],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    minify: true,
    write: false,
    mainFields: ["module", "main"],
    conditions: ["import", "default"],
    logLevel: "warning",
    inject: ["lowbit:finalization"],
    plugins: [plugin(exports, stripKernels)],
  });
  return r.outputFiles[0].contents;
}

/**
 * Builds `dist/` and returns the sizes.
 *
 * @param outDir output folder (default `dist/` of the workspace)
 * @returns the sizes
 *
 * @example
 * ```ts ignore
 * import { bundle } from "./bundle.ts";
 * const s = await bundle();
 * console.log(s.jsGzip);
 * ```
 */
export async function bundle(outDir: URL = new URL("dist/", ROOT)): Promise<BundleSizes> {
  const exports = await workspaceExports();
  try {
    const js = await build("libs/session/mod.ts", exports);
    const worker = await build("libs/runtime/worker.ts", exports);
    const code = await build("libs/session/mod.ts", exports, true);
    for (
      const [name, bytes] of [["lowbit-runtime.js", js], ["lowbit-worker.js", worker]] as const
    ) {
      const text = new TextDecoder().decode(bytes);
      if (/["'`]node:/.test(text)) throw new Error(`${name} has a node: import`);
    }
    await Deno.mkdir(outDir, { recursive: true });
    await Deno.writeFile(new URL("lowbit-runtime.js", outDir), js);
    await Deno.writeFile(new URL("lowbit-worker.js", outDir), worker);
    await Deno.writeTextFile(new URL("package.json", outDir), `{ "type": "module" }\n`);
    const wasm: Record<string, number> = {};
    for (const [file, b64] of Object.entries(KERNELS)) {
      const bytes = decodeBase64(b64);
      await Deno.writeFile(new URL(file, outDir), bytes);
      wasm[file] = bytes.length;
    }
    return {
      js: js.length,
      jsGzip: gzipSync(js, { level: 9 }).length,
      codeGzip: gzipSync(code, { level: 9 }).length,
      worker: worker.length,
      wasm,
    };
  } finally {
    await esbuild.stop();
  }
}

if (import.meta.main) {
  const sizes = await bundle();
  if (Deno.args.includes("--json")) console.log(JSON.stringify(sizes));
  else {
    const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
    console.log(`dist/lowbit-runtime.js  ${kb(sizes.js)} minified, ${kb(sizes.jsGzip)} gzipped`);
    console.log(`  of which code (without the embedded kernels): ${kb(sizes.codeGzip)} gzipped`);
    console.log(`dist/lowbit-worker.js   ${kb(sizes.worker)} minified`);
    for (const [f, n] of Object.entries(sizes.wasm)) console.log(`dist/${f}  ${kb(n)}`);
  }
}

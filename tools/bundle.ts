/**
 * `deno task bundle`: builds the runtime for browsers, web workers, Node, Deno and Cloudflare
 * workers into `dist/`:
 *
 * - `lowbit-runtime.js`: `@lowbit/session` (`loadModel`) as one minified ES module, without
 *   the kernels' bytes;
 * - `lowbit-kernels-embedded.js`: the kernels' bytes (base64), which `lowbit-runtime.js` imports
 *   (dynamic `import()`) only when it compiles kernels: `loadModel` without the `wasm` option, or
 *   with `threads > 1` (esbuild code splitting; `libs/session/_embedded.ts` is the seam);
 * - `lowbit-worker.js`: the worker script of `threads > 1` (loaded next to the runtime);
 * - `int_gemm.wasm`, `float_gemm.wasm`: the kernels for hosts that only take precompiled
 *   modules (`loadModel(bytes, { wasm: { "int_gemm.wasm": module, ... } })`);
 * - `package.json` (`"type": "module"`, so that Node loads the `.js` files as ES modules);
 * - `quantize/`: the in-browser quantize page ({@link bundleQuantizePage}; `lowbit serve`
 *   serves it).
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
import * as floatRelaxedWasm from "../kernels/gemm/_float_gemm_relaxed_wasm.ts";
import * as intWasm from "../kernels/gemm/_int_gemm_wasm.ts";
import * as intRelaxedWasm from "../kernels/gemm/_int_gemm_relaxed_wasm.ts";
import { loadChartJs } from "../libs/pipeline/report/chartjs.ts";

const ROOT = new URL("../", import.meta.url);

/** Sizes of the built files, in bytes. */
export interface BundleSizes {
  /** `lowbit-runtime.js`, minified. */
  js: number;
  /** The same, gzipped (level 9). */
  jsGzip: number;
  /** `lowbit-kernels-embedded.js` (the kernels' base64), minified. */
  embedded: number;
  /** The same, gzipped (level 9). */
  embeddedGzip: number;
  /** `lowbit-worker.js`, minified. */
  worker: number;
  /** Each `.wasm` file. */
  wasm: Record<string, number>;
  /** The quantize page (`quantize/`). */
  quantizePage: PageSizes;
}

/** Kernel files written beside the bundle, from the same bytes the bundle embeds. */
const KERNELS: Record<string, string> = {
  "int_gemm.wasm": intWasm.single,
  "float_gemm.wasm": floatWasm.single,
};

/** The embedded kernels: generated module (`kernels/gemm/_<name>.ts`) → its base64 flavours. */
const EMBEDDED: Record<string, { single: string; shared: string }> = {
  _float_gemm_wasm: floatWasm,
  _float_gemm_relaxed_wasm: floatRelaxedWasm,
  _int_gemm_wasm: intWasm,
  _int_gemm_relaxed_wasm: intRelaxedWasm,
};

/** The chunk `lowbit-kernels-embedded.js`: every embedded kernel's base64. */
function embeddedChunk(): string {
  return Object.entries(EMBEDDED)
    .map(([k, v]) =>
      `export const ${k} = ${JSON.stringify({ single: v.single, shared: v.shared })};`
    )
    .join("\n");
}

/**
 * In the runtime, each generated kernel module becomes a holder of its base64, empty until
 * {@link embeddedSeam}'s `loadEmbeddedKernels` fills it from the chunk (the kernel code reads
 * `single` / `shared` when it compiles, through ES live bindings).
 */
const HOLDER = `export let single = "";
export let shared = "";
export function fill(k) { single = k.single; shared = k.shared; }`;

/** `libs/session/_embedded.ts` in the runtime: imports the chunk once, fills the holders. */
function embeddedSeam(kernelDir: string): string {
  const names = Object.keys(EMBEDDED);
  return [
    ...names.map((k, i) => `import { fill as fill${i} } from "${kernelDir}${k}.ts";`),
    "let loading;",
    "export function loadEmbeddedKernels() {",
    '  return loading ??= import("lowbit:kernels-embedded").then((m) => {',
    ...names.map((k, i) => `    fill${i}(m.${k});`),
    "  }, (e) => {",
    "    loading = undefined;", // a later call tries again
    "    throw e;",
    "  });",
    "}",
  ].join("\n");
}

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

function plugin(exports: Map<string, string>, page = false): esbuild.Plugin {
  return {
    name: "lowbit",
    setup(build) {
      build.onResolve({ filter: /^@lowbit\// }, (args) => {
        // The quantize page: @lowbit/graph without its file I/O (see libs/graph/in_memory.ts).
        if (page && args.path === "@lowbit/graph") {
          return { path: new URL("libs/graph/in_memory.ts", ROOT).pathname };
        }
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
      if (page) {
        build.onResolve({ filter: /^node:/ }, (args) => ({
          errors: [{
            text: `${args.path} imported by ${args.importer}: the quantize page's bundle takes ` +
              `no node: module (split the module that needs it)`,
          }],
        }));
        return;
      }
      // The kernels' bytes: holders in the runtime, filled from the embedded chunk.
      build.onLoad({ filter: /kernels\/gemm\/_[a-z_]+_wasm\.ts$/ }, (args) => {
        const name = /(_[a-z_]+_wasm)\.ts$/.exec(args.path)![1];
        if (!(name in EMBEDDED)) {
          return { errors: [{ text: `${name}.ts is not in tools/bundle.ts's EMBEDDED` }] };
        }
        return { contents: HOLDER, loader: "js" };
      });
      build.onLoad({ filter: /libs\/session\/_embedded\.ts$/ }, () => ({
        contents: embeddedSeam(new URL("kernels/gemm/", ROOT).pathname),
        loader: "js",
      }));
      // The runtime imports the chunk as a file beside it; built as an entry, it is the chunk.
      build.onResolve(
        { filter: /^lowbit:kernels-embedded$/ },
        (args) =>
          args.kind === "entry-point"
            ? { path: "kernels-embedded", namespace: "embedded" }
            : { path: "./lowbit-kernels-embedded.js", external: true },
      );
      build.onLoad({ filter: /.*/, namespace: "embedded" }, () => ({
        contents: embeddedChunk(),
        loader: "js",
      }));
    },
  };
}

/** Builds an entry (a source path or a virtual `lowbit:` module) into one ES module. */
async function build(
  entry: string,
  exports: Map<string, string>,
  page = false,
): Promise<Uint8Array> {
  const r = await esbuild.build({
    entryPoints: [entry.startsWith("lowbit:") ? entry : new URL(entry, ROOT).pathname],
    bundle: true,
    format: "esm",
    platform: page ? "browser" : "neutral",
    target: "es2022",
    minify: true,
    write: false,
    mainFields: ["module", "main"],
    conditions: ["import", "default"],
    logLevel: "warning",
    inject: entry.startsWith("lowbit:") ? [] : ["lowbit:finalization"],
    plugins: [plugin(exports, page)],
  });
  return r.outputFiles[0].contents;
}

/** Sizes of the quantize page's files, in bytes. */
export interface PageSizes {
  /** `page.js`, minified. */
  page: number;
  /** `worker.js` (the pipeline and its kernels), minified. */
  worker: number;
  /** The same, gzipped (level 9). */
  workerGzip: number;
}

/**
 * Builds the in-browser quantize page into `outDir` (`dist/quantize/`): `index.html`, `page.js`
 * (the page's script), `worker.js` (the lowbit pipeline: `apps/web/worker.ts`, with
 * `@lowbit/graph` resolved to its file-free entry and any `node:` import an error) and
 * `chart.umd.min.js` (Chart.js, which the reports embed).
 *
 * @param outDir output folder
 * @param exports the workspace's `@lowbit/*` exports (read from the deno.json files if absent)
 * @returns the sizes
 *
 * @example
 * ```ts ignore
 * import { bundleQuantizePage } from "./bundle.ts";
 * await bundleQuantizePage(new URL("file:///tmp/q/"));
 * ```
 */
export async function bundleQuantizePage(
  outDir: URL,
  exports?: Map<string, string>,
): Promise<PageSizes> {
  exports ??= await workspaceExports();
  const page = await build("apps/web/page.ts", exports, true);
  const worker = await build("apps/web/worker.ts", exports, true);
  for (const [name, bytes] of [["page.js", page], ["worker.js", worker]] as const) {
    const text = new TextDecoder().decode(bytes);
    if (/["'`]node:/.test(text)) throw new Error(`quantize/${name} has a node: import`);
  }
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.copyFile(new URL("apps/web/index.html", ROOT), new URL("index.html", outDir));
  await Deno.writeFile(new URL("page.js", outDir), page);
  await Deno.writeFile(new URL("worker.js", outDir), worker);
  await Deno.writeTextFile(new URL("chart.umd.min.js", outDir), await loadChartJs());
  return {
    page: page.length,
    worker: worker.length,
    workerGzip: gzipSync(worker, { level: 9 }).length,
  };
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
    const files = new Map<string, Uint8Array>([
      ["lowbit-runtime.js", await build("libs/session/mod.ts", exports)],
      ["lowbit-kernels-embedded.js", await build("lowbit:kernels-embedded", exports)],
      ["lowbit-worker.js", await build("libs/runtime/worker.ts", exports)],
    ]);
    for (const [name, bytes] of files) {
      const text = new TextDecoder().decode(bytes);
      if (/["'`]node:/.test(text)) throw new Error(`${name} has a node: import`);
    }
    const js = files.get("lowbit-runtime.js")!;
    const embedded = files.get("lowbit-kernels-embedded.js")!;
    const worker = files.get("lowbit-worker.js")!;
    await Deno.mkdir(outDir, { recursive: true });
    for (const [name, bytes] of files) await Deno.writeFile(new URL(name, outDir), bytes);
    await Deno.writeTextFile(new URL("package.json", outDir), `{ "type": "module" }\n`);
    const wasm: Record<string, number> = {};
    for (const [file, b64] of Object.entries(KERNELS)) {
      const bytes = decodeBase64(b64);
      await Deno.writeFile(new URL(file, outDir), bytes);
      wasm[file] = bytes.length;
    }
    const quantizePage = await bundleQuantizePage(new URL("quantize/", outDir), exports);
    return {
      js: js.length,
      jsGzip: gzipSync(js, { level: 9 }).length,
      embedded: embedded.length,
      embeddedGzip: gzipSync(embedded, { level: 9 }).length,
      worker: worker.length,
      wasm,
      quantizePage,
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
    console.log(
      `dist/lowbit-kernels-embedded.js  ${kb(sizes.embedded)} minified, ` +
        `${kb(sizes.embeddedGzip)} gzipped (imported only to compile the kernels)`,
    );
    console.log(`dist/lowbit-worker.js   ${kb(sizes.worker)} minified`);
    for (const [f, n] of Object.entries(sizes.wasm)) console.log(`dist/${f}  ${kb(n)}`);
    const q = sizes.quantizePage;
    console.log(
      `dist/quantize/ (the quantize page; open index.html through lowbit serve): page.js ` +
        `${kb(q.page)}, worker.js ${kb(q.worker)} minified, ${kb(q.workerGzip)} gzipped`,
    );
  }
}

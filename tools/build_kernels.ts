/**
 * THE kernel build. For every `kernels/gemm/assembly/*.ts` whose name does not start with `_`
 * (files starting with `_` are shared AssemblyScript helpers, imported by the others), it runs
 * `asc` with the common flags below, then `wasm-opt -O3`, in two flavours:
 *
 * - `kernels/gemm/build/<name>.wasm`: imports a plain (non-shared) `env.memory`;
 * - `kernels/gemm/build/<name>.shared.wasm`: imports a shared `env.memory` (threads; every
 *   worker instantiates it on the same memory).
 *
 * and writes `kernels/gemm/_<name>_wasm.ts`, which embeds both as base64 so that the package
 * loads in Deno, Node, workers and browsers without file access.
 *
 * Rules for kernel sources (checked here): no static data (no data segments: with a shared
 * memory every instantiation would re-initialise them, clobbering live data), no imports but
 * `env.memory` (so no `abort`, no strings, no allocation: the TS loader owns the memory layout
 * above {@link RESERVED_BYTES}).
 *
 * Before compiling, it expands the kernel templates (`tools/gen_kernels.ts`: ISA twins such as
 * `float_gemm.ts` / `float_gemm_relaxed.ts` come from `assembly/templates/float_gemm.tmpl`);
 * `--check` also fails when a generated source differs from its template's expansion.
 *
 * The output is deterministic: rebuilding gives the same bytes. `--check` rebuilds into memory
 * and fails (exit 1) if any output would change or is stale.
 *
 * ```sh
 * npx deno task build:kernels            # build
 * npx deno run -A tools/build_kernels.ts --check
 * npx deno run -A tools/build_kernels.ts int_gemm   # only the named module(s)
 * ```
 *
 * @module
 */

import { generateSources } from "./gen_kernels.ts";

const ROOT = new URL("../", import.meta.url);
const SRC_DIR = new URL("kernels/gemm/assembly/", ROOT);
const BUILD_DIR = new URL("kernels/gemm/build/", ROOT);
const PKG_DIR = new URL("kernels/gemm/", ROOT);

/** Bytes at the start of the memory that the TS loaders never hand out (module statics). */
export const RESERVED_BYTES = 65536;

/** WebAssembly features enabled beyond asc's defaults (asc names). */
const ASC_FEATURES = ["simd", "relaxed-simd", "threads"] as const;
/** The same set plus asc's defaults, in wasm-opt names. */
const WASM_OPT_FEATURES = [
  "simd",
  "relaxed-simd",
  "threads",
  "bulk-memory",
  "sign-ext",
  "mutable-globals",
  "nontrapping-float-to-int",
] as const;

/** The common asc flags (both flavours). */
const ASC_FLAGS: readonly string[] = [
  "--optimizeLevel",
  "3",
  "--shrinkLevel",
  "0",
  "--noAssert",
  "--runtime",
  "stub",
  "--use",
  "abort=",
  "--importMemory",
  "--noExportMemory",
  "--initialMemory",
  "1",
  "--maximumMemory",
  "65536",
  ...ASC_FEATURES.flatMap((f) => ["--enable", f]),
];

/** Extra asc flags per flavour. */
const FLAVOURS: Record<"single" | "shared", readonly string[]> = {
  single: [],
  shared: ["--sharedMemory"],
};

/** The common wasm-opt flags. */
const WASM_OPT_FLAGS: readonly string[] = [
  "-O3",
  ...WASM_OPT_FEATURES.map((f) => `--enable-${f}`),
];

/**
 * The real `node` binary: Deno intercepts a spawn of plain `"node"` (and runs itself), so resolve
 * the absolute path from PATH.
 */
async function findNode(): Promise<string> {
  const sep = Deno.build.os === "windows" ? ";" : ":";
  const exe = Deno.build.os === "windows" ? "node.exe" : "node";
  for (const dir of (Deno.env.get("PATH") ?? "").split(sep)) {
    if (!dir || dir.includes("node_modules")) continue;
    const p = `${dir}/${exe}`;
    try {
      if ((await Deno.stat(p)).isFile) return p;
    } catch {
      // not here
    }
  }
  throw new Error("build_kernels: `node` not found on PATH (needed to run asc and wasm-opt)");
}

async function run(cmd: string, args: readonly string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args: [...args], stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const dec = new TextDecoder();
    throw new Error(
      `${cmd} ${args.join(" ")} failed:\n${dec.decode(out.stdout)}${dec.decode(out.stderr)}`,
    );
  }
}

/** Reads the sections of a wasm binary to enforce the kernel source rules. */
function checkModule(name: string, bytes: Uint8Array): void {
  let p = 8;
  const leb = (): number => {
    let r = 0, s = 0, b: number;
    do {
      b = bytes[p++];
      r += (b & 0x7f) * 2 ** s;
      s += 7;
    } while (b & 0x80);
    return r;
  };
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = leb();
    const end = p + size;
    if (id === 11 || id === 12) {
      const count = leb();
      if (count !== 0) {
        throw new Error(`${name}: has ${count} data segment(s); kernels must not use static data`);
      }
    }
    if (id === 2) {
      const count = leb();
      for (let i = 0; i < count; i++) {
        const ml = leb();
        const mod = new TextDecoder().decode(bytes.subarray(p, p + ml));
        p += ml;
        const fl = leb();
        const field = new TextDecoder().decode(bytes.subarray(p, p + fl));
        p += fl;
        if (mod !== "env" || field !== "memory") {
          throw new Error(`${name}: imports ${mod}.${field}; kernels may only import env.memory`);
        }
        break; // the memory import is the only one; its limits need no parsing
      }
    }
    p = end;
  }
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

async function buildOne(name: string, tmp: string, node: string): Promise<Map<string, Uint8Array>> {
  const outputs = new Map<string, Uint8Array>();
  const src = new URL(`${name}.ts`, SRC_DIR).pathname;
  const b64: Record<string, string> = {};
  for (const [flavour, extra] of Object.entries(FLAVOURS)) {
    const raw = `${tmp}/${name}.${flavour}.raw.wasm`;
    const opt = `${tmp}/${name}.${flavour}.wasm`;
    await run(node, [
      new URL("node_modules/assemblyscript/bin/asc.js", ROOT).pathname,
      src,
      "--outFile",
      raw,
      ...ASC_FLAGS,
      ...extra,
    ]);
    await run(node, [
      new URL("node_modules/binaryen/bin/wasm-opt", ROOT).pathname,
      raw,
      ...WASM_OPT_FLAGS,
      "-o",
      opt,
    ]);
    const bytes = await Deno.readFile(opt);
    checkModule(`${name} (${flavour})`, bytes);
    const file = flavour === "single" ? `${name}.wasm` : `${name}.${flavour}.wasm`;
    outputs.set(new URL(file, BUILD_DIR).pathname, bytes);
    b64[flavour] = toBase64(bytes);
  }
  const ts = [
    `// generated by tools/build_kernels.ts, do not edit. source: kernels/gemm/assembly/${name}.ts`,
    "",
    `/** \`${name}\` kernels, imported non-shared \`env.memory\`, as base64. */`,
    `export const single: string =`,
    `  "${b64.single}";`,
    "",
    `/** \`${name}\` kernels, imported shared \`env.memory\` (threads), as base64. */`,
    `export const shared: string =`,
    `  "${b64.shared}";`,
    "",
  ].join("\n");
  outputs.set(new URL(`_${name}_wasm.ts`, PKG_DIR).pathname, new TextEncoder().encode(ts));
  return outputs;
}

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function main(args: string[]): Promise<number> {
  const check = args.includes("--check");
  const only = args.filter((a) => !a.startsWith("--"));
  // Entry sources generated from templates come first: the compiler reads them from disk.
  const staleSources: string[] = [];
  for (const [p, text] of await generateSources()) {
    const old = await readOrNull(p);
    if (old !== null && new TextDecoder().decode(old) === text) continue;
    if (check) staleSources.push(p);
    else await Deno.writeTextFile(p, text);
  }
  let names: string[] = [];
  for await (const e of Deno.readDir(SRC_DIR)) {
    if (e.isFile && e.name.endsWith(".ts") && !e.name.startsWith("_")) {
      names.push(e.name.slice(0, -3));
    }
  }
  names.sort();
  if (only.length) {
    const missing = only.filter((n) => !names.includes(n));
    if (missing.length) throw new Error(`build_kernels: no source for ${missing.join(", ")}`);
    names = only;
  }
  const node = await findNode();
  const tmp = await Deno.makeTempDir({ prefix: "lowbit_kernels_" });
  const outputs = new Map<string, Uint8Array>();
  try {
    const results = await Promise.all(names.map((n) => buildOne(n, tmp, node)));
    for (const r of results) for (const [k, v] of r) outputs.set(k, v);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  // Stale outputs: generated files whose source is gone (only when building everything).
  const stale: string[] = [];
  if (only.length === 0) {
    if (await exists(BUILD_DIR)) {
      for await (const e of Deno.readDir(BUILD_DIR)) {
        const p = new URL(e.name, BUILD_DIR).pathname;
        if (e.name.endsWith(".wasm") && !outputs.has(p)) stale.push(p);
      }
    }
    for await (const e of Deno.readDir(PKG_DIR)) {
      const p = new URL(e.name, PKG_DIR).pathname;
      if (/^_.*_wasm\.ts$/.test(e.name) && !outputs.has(p)) stale.push(p);
    }
  }
  if (check) {
    const changed: string[] = [...staleSources, ...stale];
    for (const [p, bytes] of outputs) {
      const old = await readOrNull(p);
      if (old === null || !equal(old, bytes)) changed.push(p);
    }
    if (changed.length) {
      console.error("build_kernels --check: outputs out of date (run `deno task build:kernels`):");
      for (const p of changed) console.error("  " + p);
      return 1;
    }
    console.log(`build_kernels --check: ${names.length} kernel module(s) up to date`);
    return 0;
  }
  await Deno.mkdir(BUILD_DIR, { recursive: true });
  for (const p of stale) await Deno.remove(p);
  for (const [p, bytes] of outputs) {
    const old = await readOrNull(p);
    if (old === null || !equal(old, bytes)) await Deno.writeFile(p, bytes);
  }
  console.log(`build_kernels: built ${names.join(", ") || "(no sources)"}`);
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

// The runtime bundle (`deno task bundle` → dist/lowbit-runtime.js) in every host it is for:
// Deno (in this process), Node (a child process), Cloudflare workerd from npm (`workerd serve`,
// the kernels as compiled-wasm modules, the models as data modules, requests on 127.0.0.1) and
// headless Chromium (the main thread and a module web worker). Each runs a w8a8 and an mxfp4
// lowbit file made here with `lowbit quantize` on fixtures/digits, and must give `lowbit run`'s
// outputs on the same input (within 1e-6 relative).
//
// NOTE: mxfp4 is quantized on the MLP: `lowbit run` itself cannot load the CNN's or the ViT's
// mxfp4 lowbit files today ("got 144 values, which is not a multiple of 32"; "4 blocks need 4
// scale codes, got 32"), a lowbit-file bug outside the runtime.

import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { readNpy, writeNpy } from "@lowbit/graph";
import { bundle } from "../../tools/bundle.ts";
import { findChromium, runPage } from "../../tools/chromium.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const WORKERD = `${ROOT}node_modules/@cloudflare/workerd-linux-64/bin/workerd`;
const CHROMIUM = findChromium();
const BATCH = 4;

interface Prepared {
  dir: string;
  /** Model name → lowbit file name in `dir`. */
  models: Record<string, string>;
  /** `lowbit run` outputs (the first output of each model). */
  want: Record<string, Float32Array>;
}

const MODELS: [name: string, onnx: string, preset: string][] = [
  ["w8a8", "cnn.onnx", "w8a8"],
  ["mxfp4", "mlp.onnx", "mxfp4"],
];

async function cli(args: string[]): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}apps/cli/main.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.ok(r.success, `lowbit ${args[0]} failed: ${err}`);
  return new TextDecoder().decode(r.stdout);
}

let prepared: Promise<Prepared> | undefined;

/** Builds dist/, quantizes the two models and runs them with `lowbit run` (once per file). */
function prepare(): Promise<Prepared> {
  prepared ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "lowbit_bundle_" });
    await bundle(new URL(`file://${dir}/dist/`));
    const x = readNpy(Deno.readFileSync(`${ROOT}fixtures/digits/eval_x.npy`));
    const data = (x.data as Float32Array).slice(0, BATCH * 64);
    Deno.writeFileSync(
      `${dir}/x.npy`,
      writeNpy({ dtype: "float32", shape: [BATCH, 1, 8, 8], data }),
    );
    Deno.writeFileSync(`${dir}/x.bin`, new Uint8Array(data.buffer));
    const models: Record<string, string> = {};
    await Promise.all(MODELS.map(async ([name, onnx, preset]) => {
      models[name] = `${name}.lowbit`;
      await cli([
        "quantize",
        `fixtures/digits/${onnx}`,
        "--calib",
        "fixtures/digits/calib_x.npy",
        "--preset",
        preset,
        "--out",
        `${dir}/${name}.lowbit`,
        "--no-report",
        "--json",
      ]);
    }));
    const want: Record<string, Float32Array> = {};
    for (const [name] of MODELS) {
      await cli([
        "run",
        `${dir}/${name}.lowbit`,
        "--input",
        `${dir}/x.npy`,
        "--out",
        `${dir}/${name}.npy`,
      ]);
      want[name] = readNpy(Deno.readFileSync(`${dir}/${name}.npy`)).data as Float32Array;
    }
    return { dir, models, want };
  })();
  return prepared;
}

function assertClose(got: ArrayLike<number>, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const a = got[i], b = want[i];
    const ok = a === b || Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b));
    assert.ok(ok, `${what}[${i}]: ${a} vs lowbit run ${b}`);
  }
}

// The script every host runs (as a module): loads both models, runs them on x, returns outputs.
const RUN_ALL = `
export async function runAll(loadModel, read, opts = {}) {
  const x = new Float32Array(await read("x.bin"));
  const out = {};
  for (const name of ["w8a8", "mxfp4"]) {
    const s = await loadModel(new Uint8Array(await read(name + ".lowbit")), opts);
    const y = await s.run({ [s.inputNames[0]]: { data: x, dims: [${BATCH}, 1, 8, 8] } });
    out[name] = { inputs: s.inputNames, outputs: s.outputNames, y: Array.from(y[s.outputNames[0]].data) };
  }
  return out;
}
`;

type HostResult = Record<string, { inputs: string[]; outputs: string[]; y: number[] }> & {
  error?: string;
};

function check(res: HostResult, p: Prepared, host: string): void {
  assert.equal(res.error, undefined, `${host}: ${res.error}`);
  for (const [name] of MODELS) {
    assert.deepEqual(res[name].inputs, ["x"], `${host} ${name} inputs`);
    assert.deepEqual(res[name].outputs, ["logits"], `${host} ${name} outputs`);
    assertClose(res[name].y, p.want[name], `${host} ${name}`);
  }
}

Deno.test("the bundle runs in Deno (embedded kernels) and Node (precompiled kernels, 2 threads)", async () => {
  const p = await prepare();
  await Deno.writeTextFile(`${p.dir}/run_all.mjs`, RUN_ALL);
  // Deno, in this process.
  const rt = await import(`file://${p.dir}/dist/lowbit-runtime.js`);
  const { runAll } = await import(`file://${p.dir}/run_all.mjs`);
  const read = (f: string) => Deno.readFile(`${p.dir}/${f}`).then((b) => b.buffer);
  check(await runAll(rt.loadModel, read), p, "Deno");
  // Node, with the kernels compiled by the host and handed over.
  await Deno.writeTextFile(
    `${p.dir}/node_main.mjs`,
    `import { readFile } from "node:fs/promises";
import { loadModel } from "./dist/lowbit-runtime.js";
import { runAll } from "./run_all.mjs";
const dir = new URL(".", import.meta.url);
const read = async (f) => { const b = await readFile(new URL(f, dir)); return b.buffer.slice(b.byteOffset, b.byteOffset + b.length); };
const wasm = {};
for (const f of ["int_gemm.wasm", "float_gemm.wasm"]) wasm[f] = await WebAssembly.compile(await read("dist/" + f));
try { console.log(JSON.stringify(await runAll(loadModel, read, { wasm, threads: 2 }))); }
catch (e) { console.log(JSON.stringify({ error: String(e && e.stack || e) })); }
process.exit(0); // the sessions' worker pools (threads: 2) would keep Node alive
`,
  );
  const r = await new Deno.Command("node", { args: [`${p.dir}/node_main.mjs`], stdout: "piped" })
    .output();
  check(JSON.parse(new TextDecoder().decode(r.stdout)), p, "Node");
});

Deno.test("session.close() stops the pool's worker threads: Node exits on its own", async () => {
  const p = await prepare();
  await Deno.writeTextFile(
    `${p.dir}/node_close.mjs`,
    `import { readFile } from "node:fs/promises";
import { loadModel } from "./dist/lowbit-runtime.js";
const dir = new URL(".", import.meta.url);
const x = new Float32Array((await readFile(new URL("x.bin", dir))).buffer.slice(0));
const s = await loadModel(new Uint8Array(await readFile(new URL("w8a8.lowbit", dir))), { threads: 2 });
const y = await s.run({ x: { data: x, dims: [${BATCH}, 1, 8, 8] } });
await s.close();
let after = "";
try { await s.run({ x: { data: x, dims: [${BATCH}, 1, 8, 8] } }); } catch (e) { after = e.code + ": " + e.message; }
console.log(JSON.stringify({ y: Array.from(y.logits.data), after }));
// No process.exit: with the pool's workers alive, Node would not end.
`,
  );
  const child = new Deno.Command("node", {
    args: [`${p.dir}/node_close.mjs`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill(), 20_000);
  const r = await child.output();
  clearTimeout(timer);
  assert.ok(r.success, `Node did not end by itself: ${new TextDecoder().decode(r.stderr)}`);
  const out = JSON.parse(new TextDecoder().decode(r.stdout));
  assertClose(out.y, p.want.w8a8, "Node, 2 threads");
  assert.match(out.after, /^INVALID_ARGUMENT: .*closed/);
});

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("the bundle runs in Cloudflare workerd (compiled-wasm and data modules)", async () => {
  const p = await prepare();
  const dir = `${p.dir}/workerd`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/run_all.mjs`, RUN_ALL);
  await Deno.writeTextFile(
    `${dir}/worker.js`,
    `import { loadModel } from "./lowbit-runtime.js";
import { runAll } from "./run_all.mjs";
import intGemm from "./int_gemm.wasm";
import floatGemm from "./float_gemm.wasm";
import w8a8 from "./w8a8.lowbit";
import mxfp4 from "./mxfp4.lowbit";
import x from "./x.bin";
const files = { "w8a8.lowbit": w8a8, "mxfp4.lowbit": mxfp4, "x.bin": x };
export default {
  async fetch() {
    try {
      const wasm = { "int_gemm.wasm": intGemm, "float_gemm.wasm": floatGemm };
      return Response.json(await runAll(loadModel, async (f) => files[f], { wasm }));
    } catch (e) {
      return Response.json({ error: String(e && e.stack || e) });
    }
  },
};
`,
  );
  const port = freePort();
  const mod = (name: string, kind: string, file = name) =>
    `(name = "${name}", ${kind} = embed "${file}")`;
  await Deno.writeTextFile(
    `${dir}/config.capnp`,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .w) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const w :Workerd.Worker = (
  modules = [
    ${mod("worker.js", "esModule")},
    ${mod("run_all.mjs", "esModule")},
    ${mod("lowbit-runtime.js", "esModule", "../dist/lowbit-runtime.js")},
    # No lowbit-kernels-embedded.js: given opts.wasm, the runtime must never import it.
    ${mod("int_gemm.wasm", "wasm", "../dist/int_gemm.wasm")},
    ${mod("float_gemm.wasm", "wasm", "../dist/float_gemm.wasm")},
    ${mod("w8a8.lowbit", "data", "../w8a8.lowbit")},
    ${mod("mxfp4.lowbit", "data", "../mxfp4.lowbit")},
    ${mod("x.bin", "data", "../x.bin")},
  ],
  compatibilityDate = "2025-01-01",
);
`,
  );
  const child = new Deno.Command(WORKERD, {
    args: ["serve", `${dir}/config.capnp`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    let res: HostResult | undefined;
    const deadline = Date.now() + 20_000;
    while (res === undefined) {
      try {
        res = await (await fetch(`http://127.0.0.1:${port}/`)).json();
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`workerd did not answer: ${e}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    check(res, p, "workerd");
  } finally {
    child.kill();
    await child.stderr.cancel();
    await child.status;
  }
});

const PAGE = `<!doctype html><meta charset="utf-8"><title>lowbit runtime</title>
<script type="module">
import { loadModel } from "./dist/lowbit-runtime.js";
import { runAll } from "./run_all.mjs";
const read = async (f) => (await fetch("./" + f)).arrayBuffer();
const report = (body) => fetch("/result", { method: "POST", body: JSON.stringify(body) });
try {
  const main = await runAll(loadModel, read);
  const worker = await new Promise((resolve, reject) => {
    const w = new Worker("./worker.mjs", { type: "module" });
    w.onmessage = (e) => resolve(e.data);
    w.onerror = (e) => reject(new Error("worker: " + e.message));
  });
  await report({ main, worker });
} catch (e) {
  await report({ main: { error: String(e && e.stack || e) }, worker: {} });
}
</script>`;

// In the worker: kernels compiled by the page's host from dist/*.wasm and handed over, two
// threads (the page is cross-origin isolated: a SharedArrayBuffer pool of lowbit-worker.js).
const WORKER = `import { loadModel } from "./dist/lowbit-runtime.js";
import { runAll } from "./run_all.mjs";
const read = async (f) => (await fetch("./" + f)).arrayBuffer();
try {
  const wasm = {};
  for (const f of ["int_gemm.wasm", "float_gemm.wasm"]) {
    wasm[f] = await WebAssembly.compileStreaming(fetch("./dist/" + f));
  }
  postMessage({ isolated: crossOriginIsolated, ...await runAll(loadModel, read, { wasm, threads: 2 }) });
} catch (e) {
  postMessage({ error: String(e && e.stack || e) });
}
`;

Deno.test({
  name: CHROMIUM
    ? "the bundle runs in headless Chromium, on the main thread and in a web worker (2 threads)"
    : "the bundle in Chromium: skipped, chromium not found (/usr/bin/chromium)",
  ignore: CHROMIUM === undefined,
  fn: async () => {
    const p = await prepare();
    const generated: Record<string, string> = {
      "/": PAGE,
      "/run_all.mjs": RUN_ALL,
      "/worker.mjs": WORKER,
    };
    const res = await runPage<{ main: HostResult; worker: HostResult }>(CHROMIUM!, {
      files: (path) => {
        if (path in generated) return generated[path];
        if (!/^\/(dist\/)?[\w.-]+$/.test(path)) return undefined;
        return Deno.readFile(`${p.dir}${path}`).catch(() => undefined);
      },
      isolated: true,
      timeoutMs: 30_000,
      label: "the runtime bundle",
    });
    check(res.main, p, "Chromium main thread");
    check(res.worker, p, "Chromium web worker");
    assert.equal((res.worker as { isolated?: boolean }).isolated, true, "crossOriginIsolated");
  },
});

Deno.test("the runtime is at most 150 KB gzipped, without the kernels, which load only when compiled", async () => {
  const p = await prepare();
  const js = await Deno.readFile(`${p.dir}/dist/lowbit-runtime.js`);
  const gz = gzipSync(js, { level: 9 }).length;
  assert.ok(gz <= 150 * 1024, `lowbit-runtime.js is ${(gz / 1024).toFixed(1)} KB gzipped`);
  // No kernel bytes in it: the longest string literal is far shorter than any kernel's base64
  // (the smallest, int_gemm_relaxed, is ~18 KB), and wasm's magic in base64 is absent.
  const text = new TextDecoder().decode(js);
  assert.ok(!text.includes("AGFzbQ"), "a wasm module's base64 in lowbit-runtime.js");
  // The one way to the kernels' bytes: a dynamic import of the chunk beside it (and no static
  // import of anything: the workerd test lists only lowbit-runtime.js, and passes).
  assert.deepEqual(
    [...text.matchAll(/import\(\s*"([^"]*)"\s*\)/g)].map((m) => m[1]),
    ["./lowbit-kernels-embedded.js"],
  );
  assert.doesNotMatch(text, /\bimport\s*["'{*\w]/, "a static import");
  const chunk = await import(`file://${p.dir}/dist/lowbit-kernels-embedded.js`);
  assert.deepEqual(
    Uint8Array.from(atob(chunk._int_gemm_wasm.single), (c) => c.charCodeAt(0)),
    await Deno.readFile(`${p.dir}/dist/int_gemm.wasm`),
    "the chunk's int_gemm = dist/int_gemm.wasm",
  );
});

Deno.test("without its embedded-kernels file the runtime needs opts.wasm, and says so", async () => {
  const p = await prepare();
  const dir = `${p.dir}/lonely`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.copyFile(`${p.dir}/dist/lowbit-runtime.js`, `${dir}/lowbit-runtime.js`);
  const rt = await import(`file://${dir}/lowbit-runtime.js`);
  const model = await Deno.readFile(`${p.dir}/w8a8.lowbit`);
  await assert.rejects(
    rt.loadModel(model),
    (e: Error & { code?: string }) =>
      e.code === "IO_ERROR" && /lowbit-kernels-embedded\.js.*opts\.wasm/.test(e.message),
  );
  const wasm: Record<string, WebAssembly.Module> = {};
  for (const f of ["int_gemm.wasm", "float_gemm.wasm"]) {
    wasm[f] = await WebAssembly.compile(await Deno.readFile(`${p.dir}/dist/${f}`));
  }
  const s = await rt.loadModel(model, { wasm });
  const x = new Float32Array((await Deno.readFile(`${p.dir}/x.bin`)).buffer);
  const y = await s.run({ x: { data: x, dims: [BATCH, 1, 8, 8] } });
  assertClose(y.logits.data, p.want.w8a8, "lonely runtime with opts.wasm");
  await s.close();
});

Deno.test("the bundle has no node: import, no Deno API, no string code generation; valid kernels", async () => {
  const p = await prepare();
  for (const f of ["lowbit-runtime.js", "lowbit-kernels-embedded.js", "lowbit-worker.js"]) {
    const js = await Deno.readTextFile(`${p.dir}/dist/${f}`);
    assert.doesNotMatch(js, /["'`]node:/, f);
    assert.doesNotMatch(js, /\beval\(|new Function\b|\bFunction\(/, f);
    assert.doesNotMatch(js, /\bDeno\./, f);
  }
  for (const f of ["int_gemm.wasm", "float_gemm.wasm"]) {
    const bytes = await Deno.readFile(`${p.dir}/dist/${f}`);
    assert.ok(WebAssembly.validate(bytes), f);
  }
  await Deno.remove(p.dir, { recursive: true });
});

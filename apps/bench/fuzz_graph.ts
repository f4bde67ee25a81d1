/**
 * Fuzz soak of lowbit's file decoders and of the files lowbit itself writes: mutates the
 * committed fixtures (ONNX, safetensors, `.npy`, a lowbit file) and, second, the outputs of real
 * quantize runs (QDQ `.onnx` of w8a8 / w4a8 / fp8, `.lowbit` of w8a8 / nvfp4, and their plan
 * JSON) with a seeded PRNG, and checks that every case either decodes — and, for lowbit's own
 * outputs, runs on one sample (`createExecutor`, `simulate`) or replays (`parsePlan` +
 * `quantize({ plan })`) — or raises a LowbitError. A benchmark, not a test.
 *
 * ```sh
 * npx deno run -A apps/bench/fuzz_graph.ts [cases=20000] [seed=1] [outputCases=6000]
 * ```
 *
 * Exits with status 1 when any case throws something else.
 *
 * @module
 */

import { createRng, LowbitError, type Rng } from "@lowbit/core";
import { createExecutor, readNpy, readOnnx } from "@lowbit/graph";
import {
  decodeLowbitModel,
  encodeQuantized,
  parsePlan,
  planToJson,
  quantize,
  simulate,
} from "@lowbit/pipeline";
import { type FuzzFailure, loadCorpus, runFuzz } from "../../libs/graph/_fuzz.ts";

/** What kind of lowbit output a case mutates. */
type OutputKind = "qdq" | "lowbit" | "plan";

/** Tally of the output fuzz. */
interface OutputReport {
  cases: number;
  byKind: Record<OutputKind, number>;
  accepted: number;
  rejected: Record<string, number>;
  failures: FuzzFailure[];
  ms: number;
}

const FIX = new URL("../../fixtures/digits/", import.meta.url);

/** Real outputs of quantize runs on the digits fixtures. */
async function outputCorpus(): Promise<{
  qdq: Uint8Array[];
  lowbit: Uint8Array[];
  plan: string[];
  mlp: ReturnType<typeof readOnnx>;
  calib: { inputs: { x: ReturnType<typeof readNpy> }; count: number };
  one: Float32Array;
}> {
  const x = readNpy(await Deno.readFile(new URL("calib_x.npy", FIX)));
  const calib = { inputs: { x }, count: x.shape[0] };
  const model = (n: string) => readOnnx(Deno.readFileSync(new URL(`${n}.onnx`, FIX)));
  const mlp = model("mlp");
  const qdq: Uint8Array[] = [], lowbit: Uint8Array[] = [], plan: string[] = [];
  for (const [name, preset] of [["cnn", "w8a8"], ["mlp", "w4a8"], ["vit", "fp8"]]) {
    const { quantized } = await quantize({ model: model(name), calib, preset });
    qdq.push(encodeQuantized(quantized, "m.onnx"));
  }
  for (const [name, preset] of [["cnn", "w8a8"], ["mlp", "nvfp4"]]) {
    const { quantized } = await quantize({ model: model(name), calib, preset });
    lowbit.push(encodeQuantized(quantized, "m.lowbit"));
  }
  for (const preset of ["w8a8", "w4a16", "nvfp4"]) {
    plan.push(planToJson((await quantize({ model: mlp, calib, preset })).quantized.plan));
  }
  return { qdq, lowbit, plan, mlp, calib, one: (x.data as Float32Array).slice(0, 64) };
}

type Mutation = (b: Uint8Array, rng: Rng) => [Uint8Array, string];

const bytesMutations: Mutation[] = [
  (b, rng) => {
    const out = b.slice();
    const n = 1 + rng.int(8);
    for (let i = 0; i < n; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
    return [out, `flip ${n} bits`];
  },
  (b, rng) => {
    const at = rng.int(b.length);
    return [b.slice(0, at), `truncate at ${at}`];
  },
  (b, rng) => {
    const out = b.slice();
    const at = rng.int(out.length), n = 1 + rng.int(6);
    for (let i = 0; i < n && at + i < out.length; i++) {
      out[at + i] = [0xff, 0x80, 0x7f, 0x00][rng.int(4)];
    }
    return [out, `smash ${n} bytes at ${at}`];
  },
  (b, rng) => {
    const at = rng.int(b.length), n = Math.min(1 + rng.int(16), b.length - at);
    const out = new Uint8Array(b.length - n);
    out.set(b.subarray(0, at));
    out.set(b.subarray(at + n), at);
    return [out, `erase ${n} bytes at ${at}`];
  },
];

/** Odd values a JSON leaf can be replaced with. */
const ODD: unknown[] = [
  -1,
  0,
  1e308,
  -1e308,
  1.5,
  2 ** 53,
  "x",
  "",
  null,
  true,
  [],
  {},
  [1, 2, 3],
  { kind: "group", size: 0 },
  "NaN",
  "int99",
  new Array(70).fill(1),
];

/** A structural mutation of a JSON document: a leaf or key replaced, removed or duplicated. */
function mutateJson(doc: unknown, rng: Rng): string {
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, p: (string | number)[]): void => {
    paths.push(p);
    if (paths.length > 4000) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
    }
  };
  walk(doc, []);
  const p = paths[1 + rng.int(paths.length - 1)];
  let parent = doc as Record<string | number, unknown>;
  for (const k of p.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const key = p[p.length - 1];
  const op = rng.int(4);
  if (op === 0 && !Array.isArray(parent)) delete parent[key];
  else if (op === 1 && Array.isArray(parent)) parent.push(structuredClone(parent[key as number]));
  else parent[key] = structuredClone(ODD[rng.int(ODD.length)]);
  return `${["remove", "duplicate", "replace", "replace"][op]} ${p.join(".")}`;
}

/** Mutates lowbit's own outputs and loads them as `quantize` / `eval` / `run` would. */
async function fuzzOutputs(cases: number, seed: number): Promise<OutputReport> {
  const corpus = await outputCorpus();
  const rng = createRng(seed + 7919);
  const kinds: OutputKind[] = ["qdq", "qdq", "lowbit", "lowbit", "plan"];
  const report: OutputReport = {
    cases,
    byKind: { qdq: 0, lowbit: 0, plan: 0 },
    accepted: 0,
    rejected: {},
    failures: [],
    ms: 0,
  };
  const enc = new TextEncoder();
  const t0 = performance.now();
  for (let i = 0; i < cases; i++) {
    const kind = kinds[i % kinds.length];
    report.byKind[kind]++;
    let mutation = "";
    try {
      if (kind === "plan") {
        const src = corpus.plan[rng.int(corpus.plan.length)];
        let text: string;
        if (rng.int(4) === 0) {
          const [b, m] = bytesMutations[rng.int(bytesMutations.length)](enc.encode(src), rng);
          text = new TextDecoder().decode(b);
          mutation = m;
        } else {
          const doc = JSON.parse(src);
          mutation = mutateJson(doc, rng);
          text = JSON.stringify(doc);
        }
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch (e) {
          // What the CLI's readJsonFile turns a syntax error into.
          throw new LowbitError("PARSE_ERROR", `not valid JSON: ${(e as Error).message}`);
        }
        const plan = parsePlan(json, "fuzz.plan.json");
        await quantize({ model: corpus.mlp, calib: corpus.calib, plan });
      } else {
        const files = corpus[kind];
        const [bytes, m] = bytesMutations[rng.int(bytesMutations.length)](
          files[rng.int(files.length)],
          rng,
        );
        mutation = m;
        // Decoded files are also run on one sample, as `eval` and `run` would.
        const one = { x: { ...corpus.calib.inputs.x, shape: [1, 1, 8, 8], data: corpus.one } };
        if (kind === "qdq") {
          const model = readOnnx(bytes, { fileName: "fuzz.onnx" });
          const input = model.graph.inputs[0]?.name ?? "x";
          await createExecutor(model, { quantized: "integer" }).run({ [input]: one.x });
        } else {
          await simulate(decodeLowbitModel(bytes, "fuzz.lowbit")).run(one);
        }
      }
      report.accepted++;
    } catch (e) {
      if (e instanceof LowbitError) {
        report.rejected[e.code] = (report.rejected[e.code] ?? 0) + 1;
      } else {
        report.failures.push({
          kind: kind === "plan" ? "npy" : kind === "qdq" ? "onnx" : "lowbit",
          index: i,
          mutation: `${kind}: ${mutation}`,
          error: String((e as Error)?.stack ?? e),
        });
      }
    }
  }
  report.ms = performance.now() - t0;
  return report;
}

function printFailures(failures: FuzzFailure[]): void {
  for (const f of failures.slice(0, 10)) {
    console.log(
      `  - #${f.index} ${f.kind} (${f.mutation}): ${f.error.split("\n").slice(0, 3).join(" | ")}`,
    );
  }
}

if (import.meta.main) {
  const cases = Number(Deno.args[0] ?? 20000);
  const seed = Number(Deno.args[1] ?? 1);
  const outputCases = Number(Deno.args[2] ?? 6000);
  const r = runFuzz(loadCorpus(), cases, seed);
  console.log(
    `fuzz_graph: ${r.cases} fixture cases (seed ${seed}) in ${(r.ms / 1000).toFixed(1)} s`,
  );
  console.log(`  by kind:  ${JSON.stringify(r.byKind)}`);
  console.log(`  accepted: ${r.accepted}`);
  console.log(`  rejected with LowbitError: ${JSON.stringify(r.rejected)}`);
  console.log(`  other exceptions: ${r.failures.length}`);
  printFailures(r.failures);
  const o = await fuzzOutputs(outputCases, seed);
  console.log(
    `fuzz_graph: ${o.cases} cases on lowbit's own outputs in ${(o.ms / 1000).toFixed(1)} s`,
  );
  console.log(`  by kind:  ${JSON.stringify(o.byKind)}`);
  console.log(`  accepted: ${o.accepted}`);
  console.log(`  rejected with LowbitError: ${JSON.stringify(o.rejected)}`);
  console.log(`  other exceptions: ${o.failures.length}`);
  printFailures(o.failures);
  const models = r.byKind.onnx + r.byKind.lowbit + o.byKind.qdq + o.byKind.lowbit;
  console.log(
    `  totals: ${models} model files (ONNX and .lowbit), ${
      r.byKind.npy + o.byKind.plan
    } .npy / plan files, ` +
      `${r.failures.length + o.failures.length} untyped errors`,
  );
  if (r.failures.length || o.failures.length) Deno.exit(1);
}

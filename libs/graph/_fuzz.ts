// Fuzz harness shared by fuzz_test.ts (a few hundred cases) and
// apps/bench/fuzz_graph.ts (the ≥ 10 000-case soak): mutates real files and
// checks that decoding them either succeeds or throws a LowbitError — never
// any other exception.

import { createRng, LowbitError, type Rng } from "@lowbit/core";
import { decodeLowbitFile, encodeLowbitFile, type LowbitTensor } from "./export/lowbit_file.ts";
import { readNpy } from "./npy.ts";
import { readOnnx, writeOnnx } from "./onnx.ts";
import { inferShapes } from "./passes/shape_infer.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";

/** What kind of file a case mutates. */
export type FuzzKind = "onnx" | "safetensors" | "npy" | "lowbit";

/** One case that threw something other than a LowbitError. */
export interface FuzzFailure {
  kind: FuzzKind;
  index: number;
  mutation: string;
  error: string;
}

/** Tally of a fuzz run. */
export interface FuzzReport {
  cases: number;
  accepted: number;
  rejected: Record<string, number>;
  byKind: Record<FuzzKind, number>;
  failures: FuzzFailure[];
  ms: number;
}

/** The real files mutated. */
export interface FuzzCorpus {
  onnx: Uint8Array[];
  npy: Uint8Array[];
  safetensors: Uint8Array[];
  lowbit: Uint8Array[];
}

/** Builds the corpus from the committed fixtures (relative to the repository root). */
export function loadCorpus(root = "."): FuzzCorpus {
  const rd = (p: string): Uint8Array => Deno.readFileSync(`${root}/${p}`);
  const onnx = ["mlp", "cnn", "vit"].map((n) => rd(`fixtures/digits/${n}.onnx`));
  const npy = ["eval_y.npy", "mlp_eval_logits.npy", "calib_x.npy"].map((n) =>
    rd(`fixtures/digits/${n}`)
  );
  const model = readOnnx(onnx[1]);
  const st = writeSafetensors(model.graph.initializers, { source: "cnn.onnx" });
  const tensors = new Map<string, LowbitTensor>();
  for (const [name, t] of model.graph.initializers) {
    if (t.shape.length < 2) continue;
    tensors.set(name, {
      format: "int4",
      bits: 4,
      shape: [...t.shape],
      granularity: { kind: "tensor" },
      mode: "symmetric",
      codes: new Uint8Array(t.data.length).fill(3),
      scale: new Float32Array([0.1]),
      zeroPoint: new Int32Array(1),
    });
  }
  const lowbit = encodeLowbitFile(model, { entries: [] }, tensors);
  return { onnx, npy, safetensors: [st], lowbit: [lowbit] };
}

// *** mutations ***

type Mutation = (b: Uint8Array, rng: Rng) => [Uint8Array, string];

const bitFlips: Mutation = (b, rng) => {
  const out = b.slice();
  const n = 1 + rng.int(8);
  for (let i = 0; i < n; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
  return [out, `flip ${n} bits`];
};
const truncate: Mutation = (b, rng) => {
  const at = rng.int(b.length);
  return [b.slice(0, at), `truncate at ${at}`];
};
const insert: Mutation = (b, rng) => {
  const at = rng.int(b.length + 1), n = 1 + rng.int(16);
  const ins = Uint8Array.from({ length: n }, () => rng.int(256));
  const out = new Uint8Array(b.length + n);
  out.set(b.subarray(0, at));
  out.set(ins, at);
  out.set(b.subarray(at), at + n);
  return [out, `insert ${n} bytes at ${at}`];
};
const erase: Mutation = (b, rng) => {
  const at = rng.int(b.length), n = Math.min(1 + rng.int(16), b.length - at);
  const out = new Uint8Array(b.length - n);
  out.set(b.subarray(0, at));
  out.set(b.subarray(Math.min(b.length, at + n)), at);
  return [out, `erase ${n} bytes at ${at}`];
};
const smash: Mutation = (b, rng) => {
  // Overwrite a few bytes with values that make varints / lengths huge.
  const out = b.slice();
  const at = rng.int(out.length), n = 1 + rng.int(6);
  for (let i = 0; i < n && at + i < out.length; i++) {
    out[at + i] = [0xff, 0x80, 0x7f, 0x00][rng.int(4)];
  }
  return [out, `smash ${n} bytes at ${at}`];
};
const inHeader = (m: Mutation, headerEnd: (b: Uint8Array) => number): Mutation => (b, rng) => {
  const end = Math.min(headerEnd(b), b.length);
  const [h, what] = m(b.subarray(0, end), rng);
  const out = new Uint8Array(h.length + b.length - end);
  out.set(h);
  out.set(b.subarray(end), h.length);
  return [out, `header: ${what}`];
};

const stHeaderEnd = (b: Uint8Array): number =>
  8 + Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true));
const npyHeaderEnd = (b: Uint8Array): number => 10 + (b[8] | (b[9] << 8));

/** Structural safetensors mutations: offsets out of bounds, overlaps, header length. */
const stStructural: Mutation = (b, rng) => {
  const end = stHeaderEnd(b);
  const header = JSON.parse(new TextDecoder().decode(b.subarray(8, end)));
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const data = b.subarray(end);
  const pick = (): Record<string, unknown> => header[names[rng.int(names.length)]];
  let what: string;
  switch (rng.int(7)) {
    case 0: {
      const e = pick();
      e.data_offsets = [rng.int(data.length * 2), data.length + 1 + rng.int(1000)];
      what = "offsets out of bounds";
      break;
    }
    case 1: {
      const a = pick(), c = pick();
      c.data_offsets = a.data_offsets;
      what = "overlapping offsets";
      break;
    }
    case 2: {
      const e = pick();
      e.shape = [rng.int(1 << 20), rng.int(1 << 20)];
      what = "shape disagrees with size";
      break;
    }
    case 3: {
      pick().dtype = ["F4", "Q8", "", "I128", "f32"][rng.int(5)];
      what = "bad dtype";
      break;
    }
    case 4: {
      const e = pick();
      e.data_offsets = [-1, 1.5, "x", null][rng.int(4)];
      what = "malformed offsets";
      break;
    }
    case 5: {
      const out = b.slice();
      const big =
        [BigInt(b.length), BigInt(b.length) * 2n, 2n ** 63n, 2n ** 64n - 1n, 0n][rng.int(5)];
      new DataView(out.buffer).setBigUint64(0, big, true);
      return [out, `header length ${big}`];
    }
    default: {
      header.__metadata__ = [{ a: 1 }, "x", { k: 5 }][rng.int(3)];
      what = "bad __metadata__";
    }
  }
  const j = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + j.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(j.length), true);
  out.set(j, 8);
  out.set(data, 8 + j.length);
  return [out, what];
};

const npyStructural: Mutation = (b, rng) => {
  const end = npyHeaderEnd(b);
  const text = new TextDecoder("latin1").decode(b.subarray(10, end));
  const choices = [
    () => text.replace(/'shape': \([^)]*\)/, `'shape': (${rng.int(1 << 30)}, ${rng.int(100)})`),
    () =>
      text.replace(
        /'descr': '[^']*'/,
        `'descr': '${["<f2", ">f4", "|O", "<U8", "<c8", "x"][rng.int(6)]}'`,
      ),
    () => text.replace("False", "True"),
    () => text.replace(/'shape': \([^)]*\)/, "'shape': (-3, 2)"),
    () => text.slice(0, rng.int(text.length)),
  ];
  const t = choices[rng.int(choices.length)]();
  const hb = Uint8Array.from(t, (c) => c.charCodeAt(0) & 0xff);
  const data = b.subarray(end);
  const out = new Uint8Array(10 + hb.length + data.length);
  out.set(b.subarray(0, 8));
  out[8] = hb.length & 0xff;
  out[9] = hb.length >> 8;
  out.set(hb, 10);
  out.set(data, 10 + hb.length);
  return [out, `npy header '${t.slice(0, 60)}'`];
};

const GENERIC: Mutation[] = [bitFlips, truncate, insert, erase, smash];

function decode(kind: FuzzKind, bytes: Uint8Array): void {
  switch (kind) {
    case "onnx": {
      const m = readOnnx(bytes, { fileName: "fuzz.onnx" });
      // A model that decodes must also survive re-encoding and shape inference.
      readOnnx(writeOnnx(m));
      inferShapes(m.graph);
      return;
    }
    case "safetensors":
      readSafetensors(bytes, { fileName: "fuzz.safetensors" });
      return;
    case "npy":
      readNpy(bytes, "fuzz.npy");
      return;
    case "lowbit":
      decodeLowbitFile(bytes, "fuzz.lowbit");
      return;
  }
}

/**
 * Runs `cases` mutated decodes, spread over the file kinds.
 *
 * @param corpus the files to mutate
 * @param cases number of cases
 * @param seed PRNG seed
 * @param kinds the kinds to cycle through
 * @returns the tally; `failures` lists every non-LowbitError
 */
export function runFuzz(
  corpus: FuzzCorpus,
  cases: number,
  seed: number,
  kinds: readonly FuzzKind[] = ["onnx", "onnx", "safetensors", "npy", "lowbit"],
): FuzzReport {
  const rng = createRng(seed);
  const report: FuzzReport = {
    cases,
    accepted: 0,
    rejected: {},
    byKind: { onnx: 0, safetensors: 0, npy: 0, lowbit: 0 },
    failures: [],
    ms: 0,
  };
  const t0 = performance.now();
  for (let i = 0; i < cases; i++) {
    const kind = kinds[i % kinds.length];
    const files = corpus[kind];
    const src = files[rng.int(files.length)];
    let muts = GENERIC;
    if (kind === "safetensors") {
      muts = [
        ...GENERIC.map((m) => inHeader(m, stHeaderEnd)),
        stStructural,
        stStructural,
        bitFlips,
      ];
    }
    if (kind === "npy") {
      muts = [
        ...GENERIC.map((m) => inHeader(m, npyHeaderEnd)),
        npyStructural,
        npyStructural,
        truncate,
      ];
    }
    const [bytes, mutation] = muts[rng.int(muts.length)](src, rng);
    report.byKind[kind]++;
    try {
      decode(kind, bytes);
      report.accepted++;
    } catch (e) {
      if (e instanceof LowbitError) {
        report.rejected[e.code] = (report.rejected[e.code] ?? 0) + 1;
      } else {
        report.failures.push({ kind, index: i, mutation, error: String((e as Error)?.stack ?? e) });
      }
    }
  }
  report.ms = performance.now() - t0;
  return report;
}

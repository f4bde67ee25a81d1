// The results table of plugins/vit/README.md: top-1 of both ViT fixtures under each Softmax
// quantizer at w4a4 and w8a4 (and w8a8, float), each figure from one `lowbit quantize --json`
// run of the CLI, exactly as the README's commands write them.
//
//   npx deno run -A plugins/vit/bench.ts [--json]
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const D = `${ROOT}fixtures/digits/`;
const MODELS: Record<string, string> = {
  "digits/vit.onnx (4 heads)": `${D}vit.onnx`,
  "vit4/vit4.onnx (6 heads)": `${ROOT}fixtures/vit4/vit4.onnx`,
};
const COLUMNS: Record<string, string[]> = {
  "uniform": ["--vit-softmax", "uniform"],
  "log2": ["--vit-softmax", "log2"],
  "logsqrt2": ["--vit-softmax", "logsqrt2"],
  "twin": ["--vit-softmax", "twin"],
  "adalog (default)": [],
  "adalog + noisy bias": ["--noisy-bias"],
};

const cache = new Map<string, number>();

async function top1(model: string, preset: string, extra: string[]): Promise<number> {
  const key = [model, preset, ...extra].join(" ");
  if (cache.has(key)) return cache.get(key)!;
  const out = await Deno.makeTempDir();
  const args = [
    "run",
    "-A",
    `${ROOT}apps/cli/main.ts`,
    "quantize",
    model,
    "--calib",
    `${D}calib_x.npy`,
    "--preset",
    preset,
    "--out",
    `${out}/m.lowbit`,
    "--eval",
    `${D}eval_x.npy`,
    "--labels",
    `${D}eval_y.npy`,
    "--json",
    "--no-report",
    ...extra,
  ];
  const r = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  await Deno.remove(out, { recursive: true });
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
  const v = JSON.parse(new TextDecoder().decode(r.stdout)).evaluation.top1_quant;
  cache.set(key, v);
  return v;
}

const pct = (v: number) => (100 * v).toFixed(2);
const rows: Record<string, Record<string, number>> = {};
for (const [label, model] of Object.entries(MODELS)) {
  for (const preset of ["w4a4", "w8a4"]) {
    const row: Record<string, number> = {};
    for (const [col, extra] of Object.entries(COLUMNS)) {
      row[col] = await top1(model, preset, ["--plugin", "vit", ...extra]);
    }
    row["w8a8 (plugin, default)"] = await top1(model, "w8a8", ["--plugin", "vit"]);
    row["w8a8 (no plugin)"] = await top1(model, "w8a8", []);
    rows[`${label} ${preset}`] = row;
    console.error(label, preset, JSON.stringify(row));
  }
}
if (Deno.args.includes("--json")) console.log(JSON.stringify(rows, null, 2));
else {
  const cols = Object.keys(Object.values(rows)[0]);
  console.log(`| model, preset | ${cols.join(" | ")} |`);
  console.log(`| --- | ${cols.map(() => "---:").join(" | ")} |`);
  for (const [k, r] of Object.entries(rows)) {
    console.log(`| ${k} | ${cols.map((c) => pct(r[c])).join(" | ")} |`);
  }
}

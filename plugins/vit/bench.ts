// The results table of plugins/vit/README.md: top-1 of the ViT fixtures under each Softmax
// quantizer at w4a4 and w8a4 (and w8a8, and float), each figure from one `lowbit quantize --json`
// run of the CLI, exactly as the README's commands write them. Two runs at a time.
//
// The accuracy guard is off in every run (`--min-sqnr off`): with it on, the guard may keep
// different points of each column in float (on vit145 it kept four of uniform's six Softmax
// outputs), so the columns would not compare quantizers on the same points. `--guard` turns it
// back on (the CLI's default, 20 dB).
//
//   npx deno run -A plugins/vit/bench.ts [--json] [--guard] [--model digits|vit4|vit64|vit145]...
//     [--preset w4a4|w8a4]... [--column uniform|log2|logsqrt2|twin|adalog|noisy|w8a8|w8a8-plain]...
//     [--keep DIR] [-- EXTRA CLI ARGS for every plugin run]
// --keep DIR keeps each plugin cell's `.lowbit` as DIR/MODEL-PRESET-COLUMN.lowbit.
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const D = `${ROOT}fixtures/digits/`;
const V64 = `${ROOT}fixtures/vit64/`;
const V145 = `${ROOT}fixtures/vit145/`;
interface Fixture {
  label: string;
  model: string;
  calib: string;
  evalX: string;
}
const MODELS: Record<string, Fixture> = {
  digits: {
    label: "digits/vit.onnx (4 heads, 16 tokens)",
    model: `${D}vit.onnx`,
    calib: `${D}calib_x.npy`,
    evalX: `${D}eval_x.npy`,
  },
  vit4: {
    label: "vit4/vit4.onnx (6 heads, 17 tokens)",
    model: `${ROOT}fixtures/vit4/vit4.onnx`,
    calib: `${D}calib_x.npy`,
    evalX: `${D}eval_x.npy`,
  },
  vit64: {
    label: "vit64/vit64.onnx (4 heads, 65 tokens)",
    model: `${V64}vit64.onnx`,
    calib: `${V64}calib_x.npy`,
    evalX: `${V64}eval_x.npy`,
  },
  vit145: {
    label: "vit145/vit145.onnx (4 heads, 145 tokens, 6 blocks)",
    model: `${V145}vit145.onnx`,
    calib: `${V145}calib_x.npy`,
    evalX: `${V145}eval_x.npy`,
  },
};
const COLUMNS: Record<string, string[]> = {
  "uniform": ["--vit-softmax", "uniform"],
  "log2": ["--vit-softmax", "log2"],
  "logsqrt2": ["--vit-softmax", "logsqrt2"],
  "twin": ["--vit-softmax", "twin"],
  "adalog (default)": [],
  "adalog + noisy bias": ["--noisy-bias"],
};

interface Cell {
  quant: number;
  float: number;
}

async function top1(
  f: Fixture,
  preset: string,
  extra: string[],
  keepAs?: string,
): Promise<Cell> {
  const out = await Deno.makeTempDir();
  const args = [
    "run",
    "-A",
    `${ROOT}apps/cli/main.ts`,
    "quantize",
    f.model,
    "--calib",
    f.calib,
    "--preset",
    preset,
    "--out",
    `${out}/m.lowbit`,
    "--eval",
    f.evalX,
    "--labels",
    `${D}eval_y.npy`,
    "--json",
    "--no-report",
    ...(values.guard ? [] : ["--min-sqnr", "off"]),
    ...extra,
  ];
  const r = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  if (keepAs && values.keep && r.success) {
    await Deno.mkdir(values.keep, { recursive: true });
    await Deno.copyFile(`${out}/m.lowbit`, `${values.keep}/${keepAs}.lowbit`);
  }
  await Deno.remove(out, { recursive: true });
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
  const json = JSON.parse(new TextDecoder().decode(r.stdout));
  // the `auto` stage choice and its figures, with the cell they belong to
  for (const w of json.warnings ?? []) {
    if (/auto chose/.test(w)) console.error(`${keepAs ?? f.label} ${preset}: ${w}`);
  }
  const ev = json.evaluation;
  return { quant: ev.top1_quant, float: ev.top1_float };
}

const dd = Deno.args.indexOf("--");
const passThrough = dd >= 0 ? Deno.args.slice(dd + 1) : [];
const { values } = parseArgs({
  args: dd >= 0 ? Deno.args.slice(0, dd) : Deno.args,
  options: {
    json: { type: "boolean", default: false },
    guard: { type: "boolean", default: false },
    keep: { type: "string" },
    model: { type: "string", multiple: true },
    preset: { type: "string", multiple: true },
    column: { type: "string", multiple: true },
  },
});
// --column keeps only the named columns (the first word of a column's name; `noisy` for the noisy
// bias, `w8a8` for the plugin's default at w8a8, `w8a8-plain` for w8a8 without the plugin)
const COLUMN_KEYS: Record<string, string> = {
  uniform: "uniform",
  log2: "log2",
  logsqrt2: "logsqrt2",
  twin: "twin",
  adalog: "adalog (default)",
  noisy: "adalog + noisy bias",
  w8a8: "w8a8 (plugin, default)",
  "w8a8-plain": "w8a8 (no plugin)",
};
for (const c of values.column ?? []) {
  if (!(c in COLUMN_KEYS)) {
    throw new Error(`unknown --column ${c}; choices: ${Object.keys(COLUMN_KEYS).join(", ")}`);
  }
}
const wanted = (col: string): boolean =>
  !values.column?.length || values.column.some((c) => COLUMN_KEYS[c] === col);
const models = values.model?.length ? values.model : Object.keys(MODELS);
const presets = values.preset?.length ? values.preset : ["w4a4", "w8a4"];
const jobs: { row: string; col: string; run: () => Promise<Cell> }[] = [];
const rows: Record<string, Record<string, number>> = {};
for (const m of models) {
  const f = MODELS[m];
  if (!f) throw new Error(`unknown --model ${m}; choices: ${Object.keys(MODELS).join(", ")}`);
  for (const preset of presets) {
    const row = `${f.label} ${preset}`;
    rows[row] = {};
    for (const [col, extra] of Object.entries(COLUMNS)) {
      jobs.push({
        row,
        col,
        run: () =>
          top1(
            f,
            preset,
            ["--plugin", "vit", ...extra, ...passThrough],
            `${m}-${preset}-${col.split(" ")[0]}${col.includes("noisy") ? "-noisy" : ""}`,
          ),
      });
    }
    jobs.push({
      row,
      col: "w8a8 (plugin, default)",
      run: () => top1(f, "w8a8", ["--plugin", "vit", ...passThrough]),
    });
    jobs.push({ row, col: "w8a8 (no plugin)", run: () => top1(f, "w8a8", []) });
  }
}
jobs.splice(0, jobs.length, ...jobs.filter((j) => wanted(j.col)));
// w8a8 cells repeat across presets of one model: run each distinct command once
const memo = new Map<string, Promise<Cell>>();
let next = 0;
async function worker(): Promise<void> {
  while (next < jobs.length) {
    const j = jobs[next++];
    const key = `${j.row.replace(/ w\d+a\d+$/, "")}|${
      j.col.startsWith("w8a8") ? j.col : j.row + j.col
    }`;
    if (!memo.has(key)) memo.set(key, j.run());
    const c = await memo.get(key)!;
    rows[j.row][j.col] = c.quant;
    rows[j.row].float = c.float;
    console.error(j.row, "|", j.col, rows[j.row][j.col]);
  }
}
await Promise.all([worker(), worker()]);

const pct = (v: number) => (100 * v).toFixed(2);
if (values.json) console.log(JSON.stringify(rows, null, 2));
else {
  const cols = [...Object.keys(COLUMNS), "w8a8 (plugin, default)", "w8a8 (no plugin)", "float"];
  console.log(`| model, preset | ${cols.join(" | ")} |`);
  console.log(`| --- | ${cols.map(() => "---:").join(" | ")} |`);
  for (const [k, r] of Object.entries(rows)) {
    console.log(`| ${k} | ${cols.map((c) => c in r ? pct(r[c]) : "–").join(" | ")} |`);
  }
}

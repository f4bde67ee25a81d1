// One quantized model, one meaning: for every preset and for ternary / binary / NUPES / PTQTP
// weights set by rules, the top-1 computed from `lowbit run model.lowbit` equals `lowbit eval`'s
// `top1_quant` for the same file (and the quantize summary's), and where QDQ ONNX can hold the
// plan, `lowbit run` of the .lowbit and of the .onnx agree to float rounding.
import assert from "node:assert/strict";
import { readNpy } from "@lowbit/graph";
import { presetNames } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";
import { cli, top1OfFiles } from "../_cli_test_util.ts";

const FIX = fileURLToPath(new URL("../../../fixtures/digits/", import.meta.url));
const EVAL = `${FIX}eval_x.npy`, LABELS = `${FIX}eval_y.npy`, CALIB = `${FIX}calib_x.npy`;

/** Top-1 of logits written by `lowbit run`, against the labels. */
function top1(logitsPath: string): number {
  return top1OfFiles(logitsPath, LABELS);
}

async function check(dir: string, model: string, label: string, extra: string[]): Promise<void> {
  const lowbit = `${dir}/${label}.lowbit`;
  const q = await cli([
    "quantize",
    `${FIX}${model}.onnx`,
    "--calib",
    CALIB,
    "--eval",
    EVAL,
    "--labels",
    LABELS,
    "--out",
    lowbit,
    "--json",
    "--no-report",
    ...extra,
  ]);
  assert.equal(q.code, 0, `${label}: ${q.err}`);
  const summary = JSON.parse(q.out);
  const ran = await cli(["run", lowbit, "--input", EVAL, "--out", `${dir}/${label}.npy`]);
  assert.equal(ran.code, 0, `${label}: ${ran.err}`);
  const ev = await cli([
    "eval",
    `${FIX}${model}.onnx`,
    lowbit,
    "--data",
    EVAL,
    "--labels",
    LABELS,
    "--json",
  ]);
  assert.equal(ev.code, 0, `${label}: ${ev.err}`);
  const evaluated = JSON.parse(ev.out);
  const fromRun = top1(`${dir}/${label}.npy`);
  assert.equal(fromRun, evaluated.top1_quant, `${label}: run vs eval`);
  assert.equal(fromRun, summary.evaluation.top1_quant, `${label}: run vs quantize`);
  // A model that learnt something stays far above chance (10 classes).
  assert.ok(fromRun > 0.5, `${label}: top-1 ${fromRun}`);
}

Deno.test({
  name: "lowbit run of a .lowbit gives eval's top-1 for every preset, and the .onnx's outputs",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lowbit-one-meaning-" });
    try {
      for (const preset of presetNames()) {
        const extra = ["--preset", preset];
        if (preset === "mixed") {
          extra.push(
            "--budget",
            "6bits",
            "--metric",
            "layer-hessian",
            "--candidates",
            "int8/channel,int4/channel",
          );
        }
        await check(dir, "mlp", preset, extra);
        // Where QDQ ONNX holds the plan: the .onnx written from the same plan runs to the
        // same outputs as the .lowbit, to float rounding.
        const plan = `${dir}/${preset}.replay.json`;
        await Deno.copyFile(`${dir}/${preset}.plan.json`, plan);
        const onnx = `${dir}/${preset}.onnx`;
        const r = await cli([
          "quantize",
          `${FIX}mlp.onnx`,
          "--calib",
          CALIB,
          "--plan",
          plan,
          "--out",
          onnx,
          "--json",
          "--no-report",
        ]);
        if (r.code !== 0) {
          assert.match(r.err, /no QDQ ONNX form; write a \.lowbit file/, `${preset}: ${r.err}`);
          assert.ok(["mxfp8", "mxfp4", "nvfp4"].includes(preset), `${preset} should export`);
          continue;
        }
        assert.equal(
          (await cli(["run", onnx, "--input", EVAL, "--out", `${dir}/${preset}.onnx.npy`])).code,
          0,
        );
        const a = readNpy(Deno.readFileSync(`${dir}/${preset}.npy`)).data as Float32Array;
        const b = readNpy(Deno.readFileSync(`${dir}/${preset}.onnx.npy`)).data as Float32Array;
        let worst = 0;
        for (let i = 0; i < a.length; i++) {
          worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1e-3, Math.abs(a[i])));
        }
        assert.ok(worst <= 1e-5, `${preset}: .lowbit vs .onnx relative difference ${worst}`);
      }
      for (const format of ["ternary", "binary", "nupes4", "ptqtp"]) {
        const rules = `${dir}/${format}.json`;
        // The first layer stays int8 (a one-bit input layer is not what this checks).
        await Deno.writeTextFile(
          rules,
          JSON.stringify([
            { match: "*", weight: { format, granularity: "channel" } },
            { match: "/fc1/*", weight: { format: "int8", granularity: "channel" } },
          ]),
        );
        await check(dir, "mlp", format, ["--preset", "w8a8", "--config", rules]);
      }
      await check(dir, "cnn", "cnn-w8a8", ["--preset", "w8a8"]);
      await check(dir, "vit", "vit-w4a8", ["--preset", "w4a8"]);
      // MatMul weights [K, N] in MX blocks along K (the lowbit loader once crashed on them).
      await check(dir, "vit", "vit-mxfp4", ["--preset", "mxfp4"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

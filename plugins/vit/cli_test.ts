// `--plugin vit` through the CLI, in-process: `lowbit run` of the written .lowbit reproduces
// `lowbit eval`'s top-1 exactly (log, twin-uniform and noisy-bias points are FakeQuant nodes),
// replaying the plan (with the same calibration data) writes the same file, the default stays within 3 points of w8a8 on the
// digits ViT, an unknown `--vit-softmax` lists the choices, and a model without attention says
// the plugin found nothing to do.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { cli, top1OfFiles } from "../../apps/cli/_cli_test_util.ts";

const FIX = fileURLToPath(new URL("../../fixtures/digits/", import.meta.url));
const EVAL = `${FIX}eval_x.npy`, LABELS = `${FIX}eval_y.npy`, CALIB = `${FIX}calib_x.npy`;

/** Top-1 of logits written by `lowbit run`, against the labels. */
function top1(logitsPath: string): number {
  return top1OfFiles(logitsPath, LABELS);
}

async function quantize(dir: string, label: string, model: string, extra: string[]) {
  const q = await cli([
    "quantize",
    `${FIX}${model}`,
    "--calib",
    CALIB,
    "--eval",
    EVAL,
    "--labels",
    LABELS,
    "--out",
    `${dir}/${label}.lowbit`,
    "--json",
    "--no-report",
    ...extra,
  ]);
  assert.equal(q.code, 0, `${label}: ${q.err}`);
  return JSON.parse(q.out);
}

Deno.test({
  name: "lowbit run of the .lowbit reproduces lowbit eval's top-1; default within 3 points of w8a8",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const top: Record<string, number> = {};
      for (
        const [label, extra] of [
          ["default", ["--plugin", "vit", "--preset", "w4a4"]],
          ["twin-noisy", [
            "--plugin",
            "vit",
            "--preset",
            "w8a4",
            "--vit-softmax",
            "twin",
            "--vit-gelu",
            "twin",
            "--noisy-bias",
          ]],
        ] as const
      ) {
        const summary = await quantize(dir, label, "vit.onnx", [...extra]);
        const lowbit = `${dir}/${label}.lowbit`;
        const ran = await cli(["run", lowbit, "--input", EVAL, "--out", `${dir}/${label}.npy`]);
        assert.equal(ran.code, 0, `${label}: ${ran.err}`);
        const ev = await cli([
          "eval",
          `${FIX}vit.onnx`,
          lowbit,
          "--data",
          EVAL,
          "--labels",
          LABELS,
          "--json",
        ]);
        assert.equal(ev.code, 0, `${label}: ${ev.err}`);
        const fromRun = top1(`${dir}/${label}.npy`);
        assert.equal(fromRun, JSON.parse(ev.out).top1_quant, `${label}: run vs eval`);
        assert.equal(fromRun, summary.evaluation.top1_quant, `${label}: run vs quantize`);
        top[label] = fromRun;
        // the plan keeps what each quantizer fitted
        const plan = JSON.parse(await Deno.readTextFile(`${dir}/${label}.plan.json`));
        // `auto` resolved: the plan records the stages' values the model was made with
        assert.ok(["reparam", "tensor"].includes(plan.pluginOptions["vit-layernorm"]));
        assert.ok(["empirical", "off"].includes(plan.pluginOptions["vit-bias"]));
        const soft = plan.entries.filter((e: { by?: string }) => e.by === "vit-softmax");
        assert.equal(soft.length, 2);
        for (const e of soft) {
          if (label === "default") {
            assert.equal(e.quantizer, "adalog");
            assert.ok(e.extra.base[0] > 1 && e.extra.base[0] <= 2);
          } else {
            assert.equal(e.quantizer, "twin-uniform");
            assert.ok(e.extra.d1[0] > 0 && e.extra.d1[0] <= e.scale[0]);
          }
        }
        // the plan holds every fitted parameter: replaying it writes the same file
        const again = await cli([
          "quantize",
          `${FIX}vit.onnx`,
          "--plan",
          `${dir}/${label}.plan.json`,
          // the LayerNorm reparameterisation and the bias correction are recomputed from it
          "--calib",
          CALIB,
          "--out",
          `${dir}/${label}-replay.lowbit`,
          "--no-report",
        ]);
        assert.equal(again.code, 0, again.err);
        assert.deepEqual(
          await Deno.readFile(`${dir}/${label}-replay.lowbit`),
          await Deno.readFile(lowbit),
          `${label}: plan replay`,
        );
        if (label === "twin-noisy") {
          const noisy = plan.entries.filter((e: { extra?: { noise?: number[] } }) =>
            (e.extra?.noise?.[0] ?? 0) > 0
          );
          assert.ok(noisy.length > 0, "the noisy bias search kept some noise");
        }
      }
      const w8a8 = await quantize(dir, "w8a8", "vit.onnx", ["--preset", "w8a8"]);
      assert.ok(
        top.default >= w8a8.evaluation.top1_quant - 0.03,
        `${top.default} vs w8a8 ${w8a8.evaluation.top1_quant}`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("--vit-softmax with an unknown name lists the choices", async () => {
  const r = await cli([
    "quantize",
    `${FIX}vit.onnx`,
    "--plugin",
    "vit",
    "--calib",
    CALIB,
    "--vit-softmax",
    "nope",
    "--out",
    "/nonexistent/never.lowbit",
  ]);
  assert.notEqual(r.code, 0);
  for (const c of ["adalog", "log2", "logsqrt2", "twin", "uniform"]) {
    assert.ok(r.err.includes(c), r.err);
  }
  assert.ok(r.err.includes("nope"), r.err);
});

Deno.test({
  name: "a model with no Softmax / GELU: the plugin says it found nothing to do",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const s = await quantize(dir, "mlp", "mlp.onnx", ["--plugin", "vit", "--preset", "w8a8"]);
      assert.ok(
        s.warnings.some((w: string) => w.startsWith("plugin vit found nothing to do")),
        JSON.stringify(s.warnings),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

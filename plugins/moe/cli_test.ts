// The plugin from the command line, as a user runs it: `--plugin moe` quantizes the sparse MoE
// fixture, `lowbit run` of the .lowbit reproduces the figure `lowbit quantize --eval` printed,
// `lowbit moe inspect` prints the routers and experts, `lowbit moe eval` the routing agreement.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { cli, top1OfFiles } from "../../apps/cli/_cli_test_util.ts";

const FIX = fileURLToPath(new URL("../../fixtures/", import.meta.url));

Deno.test({
  name: "lowbit quantize --plugin moe, then run, moe inspect and moe eval",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lowbit-moe-" });
    try {
      const out = `${dir}/moe.lowbit`;
      const q = await cli([
        "quantize",
        `${FIX}moe/moe_sparse.onnx`,
        "--plugin",
        "moe",
        "--calib",
        `${FIX}moe/calib_x.npy`,
        "--preset",
        "w8a8",
        "--out",
        out,
        "--json",
        "--eval",
        `${FIX}digits/eval_x.npy`,
        "--labels",
        `${FIX}digits/eval_y.npy`,
      ]);
      assert.equal(q.code, 0, q.err);
      const summary = JSON.parse(q.out);
      // The report carries the plugin's section: tokens per expert (calibration routed and
      // balanced, evaluation float and quantized, from the fixture's PROVENANCE) and agreement.
      const html = await Deno.readTextFile(`${dir}/moe.report.html`);
      assert.match(html, /<h2>Mixture of experts: routing<\/h2>/);
      assert.match(html, /top-k agreement \d+\.\d+ % over 497 tokens/);
      for (const [e, routed, ev] of [[0, 65, 153], [1, 50, 148], [2, 0, 104], [3, 3, 92]]) {
        assert.match(
          html,
          new RegExp(`<tr><td>${e}</td><td>${routed}</td><td>256</td><td>${ev}</td>`),
        );
      }
      assert.ok(
        summary.warnings.some((w: string) => /the data routes 65 \/ 50 \/ 0 \/ 3/.test(w)),
        JSON.stringify(summary.warnings),
      );
      const plan = JSON.parse(await Deno.readTextFile(`${dir}/moe.plan.json`));
      assert.equal(plan.pluginOptions["moe-calib"], "balanced");
      assert.equal(plan.plugins[0].name, "moe");
      // lowbit run of the file: top-1 from its logits equals the evaluation's figure
      const ran = await cli([
        "run",
        out,
        "--plugin",
        "moe",
        "--input",
        `${FIX}digits/eval_x.npy`,
        "--out",
        `${dir}/y.npy`,
      ]);
      assert.equal(ran.code, 0, ran.err);
      assert.equal(
        top1OfFiles(`${dir}/y.npy`, `${FIX}digits/eval_y.npy`),
        summary.evaluation.top1_quant,
      );
      // inspect
      const ins = await cli(["--plugin", "moe", "moe", "inspect", `${FIX}moe/moe_dense.onnx`]);
      assert.equal(ins.code, 0, ins.err);
      assert.match(ins.out, /router \/router\/Gemm \(dense dispatch, top-1 of 4\)/);
      assert.match(
        ins.out,
        /expert 3: \/experts\.3\/experts\.3\.0\/Gemm, \/experts\.3\/experts\.3\.2\/Gemm/,
      );
      // routing agreement: the float model routes the evaluation images 153 / 148 / 104 / 92
      // (PROVENANCE.md, torch)
      const ev = await cli([
        "--plugin",
        "moe",
        "moe",
        "eval",
        `${FIX}moe/moe_sparse.onnx`,
        out,
        "--data",
        `${FIX}digits/eval_x.npy`,
      ]);
      assert.equal(ev.code, 0, ev.err);
      const [r] = JSON.parse(ev.out).routers;
      assert.equal(r.router, "/router/Gemm");
      assert.deepEqual(r.experts.map((e: { floatTokens: number }) => e.floatTokens), [
        153,
        148,
        104,
        92,
      ]);
      assert.ok(r.agreement > 0.95 && r.agreement <= 1);
      // `lowbit inspect --plugin moe` shows the same routers and experts (the inspector).
      const gen = await cli(["inspect", `${FIX}moe/moe_sparse.onnx`, "--plugin", "moe", "--json"]);
      assert.equal(gen.code, 0, gen.err);
      const sec = JSON.parse(gen.out).plugins.sections.moe;
      assert.equal(sec.data.routers.length, 1);
      assert.equal(sec.data.routers[0].node, "/router/Gemm");
      assert.deepEqual(
        sec.data.routers[0].experts.map((e: { layers: string[] }) => e.layers[0]),
        [0, 1, 2, 3].map((i) => `/experts.${i}/experts.${i}.0/Gemm`),
      );
      const bad = await cli(["--plugin", "moe", "moe", "inspect"]);
      assert.equal(bad.code, 2);
      assert.match(bad.err, /usage:/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

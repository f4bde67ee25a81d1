// A third-party plugin — a file outside the repository, loaded with --plugin PATH — registers a
// number format, a calibrator and a quantizer, and the CLI uses them by name: quantize, the
// plan records the plugin, run / eval load the model with it, and --plan replay loads it again.
import assert from "node:assert/strict";
import { defaultRegistry } from "@lowbit/core";
import { readNpy } from "@lowbit/graph";
import { fileURLToPath } from "node:url";
import { cli } from "../_cli_test_util.ts";

const FIX = fileURLToPath(new URL("../../../fixtures/digits/", import.meta.url));
const EXAMPLE = fileURLToPath(new URL("../../../docs/examples/pow2_plugin.ts", import.meta.url));

Deno.test({
  name:
    "a plugin file outside the repository adds a format, a calibrator and a quantizer to the CLI",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lowbit-plugin-" });
    try {
      const pluginPath = `${dir}/pow2_plugin.ts`;
      await Deno.copyFile(EXAMPLE, pluginPath);
      // Its option shows in the command's help once it is loaded.
      const help = await cli(["quantize", "--plugin", pluginPath, "--help"]);
      assert.equal(help.code, 0, help.err);
      assert.match(help.out, /--pow2-floor VALUE\s+pow2: the largest k/);
      const rules = `${dir}/rules.json`;
      await Deno.writeTextFile(
        rules,
        JSON.stringify([
          { match: "*", weight: { format: "int3s", granularity: "channel" } },
          { match: "*", activation: { format: "int8", quantizer: "pow2", calibrator: "absmax99" } },
        ]),
      );
      const out = `${dir}/mlp.lowbit`;
      const q = await cli([
        "quantize",
        `${FIX}mlp.onnx`,
        "--plugin",
        pluginPath,
        "--calib",
        `${FIX}calib_x.npy`,
        "--config",
        rules,
        "--pow2-floor",
        "5",
        "--out",
        out,
        "--json",
        "--no-report",
        "--min-sqnr", // the rules' int3 weights are what is under test, not the accuracy guard
        "off",
        "--eval",
        `${FIX}eval_x.npy`,
        "--labels",
        `${FIX}eval_y.npy`,
      ]);
      assert.equal(q.code, 0, q.err);
      const plan = JSON.parse(await Deno.readTextFile(`${dir}/mlp.plan.json`));
      assert.deepEqual(plan.plugins, [{
        name: "example-pow2",
        version: "1.0.0",
        source: pluginPath,
      }]);
      assert.equal(plan.pluginOptions["pow2-floor"], 5);
      const acts = plan.entries.filter((e: { role: string; skip?: boolean }) =>
        e.role === "activation" && !e.skip
      );
      assert.ok(acts.length > 0);
      for (const e of acts) {
        assert.equal(e.quantizer, "pow2");
        assert.equal(e.calibrator, "absmax99");
        assert.deepEqual(e.extra, { floor: [5] });
      }
      const weights = plan.entries.filter((e: { role: string; skip?: boolean }) =>
        e.role === "weight" && !e.skip
      );
      assert.ok(weights.every((e: { format: string }) => e.format === "int3s"));
      // absmax99: the first layer's input is the image, max 1 → scale 0.99 (float32).
      assert.equal(acts[0].scale[0], Math.fround(0.99));
      // ONNX cannot hold it: asking for .onnx fails before any work, naming the value.
      const bad = await cli([
        "quantize",
        `${FIX}mlp.onnx`,
        "--plugin",
        pluginPath,
        "--calib",
        `${FIX}calib_x.npy`,
        "--config",
        rules,
        "--out",
        `${dir}/mlp.onnx`,
        "--json",
        "--no-report",
      ]);
      assert.equal(bad.code, 2);
      assert.match(
        bad.err,
        /quantized by '(uniform' as int3s|pow2').*no QDQ ONNX form; write a \.lowbit file/,
      );
      // run and eval load the file through the same registry: the same top-1.
      const ran = await cli([
        "run",
        out,
        "--plugin",
        pluginPath,
        "--input",
        `${FIX}eval_x.npy`,
        "--out",
        `${dir}/y.npy`,
      ]);
      assert.equal(ran.code, 0, ran.err);
      const ev = await cli([
        "eval",
        `${FIX}mlp.onnx`,
        out,
        "--plugin",
        pluginPath,
        "--data",
        `${FIX}eval_x.npy`,
        "--labels",
        `${FIX}eval_y.npy`,
        "--json",
      ]);
      assert.equal(ev.code, 0, ev.err);
      assert.equal(JSON.parse(ev.out).top1_quant, JSON.parse(q.out).evaluation.top1_quant);
      // Replaying the plan loads the plugin it names and gives the same model bytes.
      const again = `${dir}/again.lowbit`;
      const r = await cli([
        "quantize",
        `${FIX}mlp.onnx`,
        "--plan",
        `${dir}/mlp.plan.json`,
        "--calib",
        `${FIX}calib_x.npy`,
        "--out",
        again,
        "--json",
        "--no-report",
      ]);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(await Deno.readFile(again), await Deno.readFile(out));
      // A fresh process runs the file without --plugin: the plan names the plugin and its source.
      const main = fileURLToPath(new URL("../main.ts", import.meta.url));
      const fresh = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          main,
          "run",
          out,
          "--input",
          `${FIX}eval_x.npy`,
          "--out",
          `${dir}/y2.npy`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(fresh.code, 0, new TextDecoder().decode(fresh.stderr));
      assert.deepEqual(await Deno.readFile(`${dir}/y2.npy`), await Deno.readFile(`${dir}/y.npy`));
      // The plugin's command.
      const grid = await cli(["pow2-grid", "int4"]);
      assert.equal(grid.code, 0, grid.err);
      assert.equal(grid.out, "1 0.5 0.25 0.125 0.0625 0.03125 0.015625");
      assert.ok(defaultRegistry().plugins().includes("example-pow2"));
      const y = readNpy(await Deno.readFile(`${dir}/y.npy`));
      assert.equal(y.shape[1], 10);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

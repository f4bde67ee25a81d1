import assert from "node:assert/strict";
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { readNpy, writeNpy } from "@lowbit/graph";
import { fileURLToPath } from "node:url";
import { plugin } from "./mod.ts";

const FIX = fileURLToPath(new URL("../../fixtures/ddpm/", import.meta.url));
const registry = createRegistry();
registerBuiltins(registry);
registry.use(plugin);
const cmd = registry.commands.get("diffusion");

Deno.test({
  name:
    "`diffusion sample` writes the fixture's samples; `eval` of the float model against itself is 0",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // the first 2 of the fixture's 16 noise streams
      const noise = readNpy(await Deno.readFile(FIX + "noise.npy"));
      const per = 2 * 64, all = 16 * 64;
      const two = new Float32Array(51 * per);
      for (let k = 0; k < 51; k++) {
        two.set((noise.data as Float32Array).subarray(k * all, k * all + per), k * per);
      }
      await Deno.writeFile(
        `${dir}/noise.npy`,
        writeNpy({ dtype: "float32", shape: [51, 2, 1, 8, 8], data: two }),
      );
      const common = ["--schedule", FIX + "betas.npy", "--noise", `${dir}/noise.npy`];
      assert.equal(
        await cmd.main(["sample", FIX + "ddpm.onnx", ...common, "--out", `${dir}/s.npy`]),
        0,
      );
      const s = readNpy(await Deno.readFile(`${dir}/s.npy`)).data as Float32Array;
      const ref = readNpy(await Deno.readFile(FIX + "samples_ddpm.npy")).data as Float32Array;
      s.forEach((v, i) => assert.ok(Math.abs(v - ref[i]) < 1e-5, `${i}: ${v} vs ${ref[i]}`));

      const logged: string[] = [];
      const log = console.log;
      console.log = (m: string) => logged.push(m);
      try {
        await cmd.main([
          "eval",
          FIX + "ddpm.onnx",
          "--float",
          FIX + "ddpm.onnx",
          "--data",
          FIX + "calib_x0.npy",
          "--per-t",
          "1",
          "--html",
          `${dir}/r.html`,
          ...common,
        ]);
      } finally {
        console.log = log;
      }
      const r = JSON.parse(logged.join("\n"));
      assert.equal(r.epsRelativeMse.mean, 0);
      assert.equal(r.epsRelativeMse.perT.length, 50);
      assert.equal(r.samples.mse, 0);
      const html = await Deno.readTextFile(`${dir}/r.html`);
      assert.ok(html.includes("<figcaption>float</figcaption>"));
      assert.ok(html.includes("<figcaption>quantized</figcaption>"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("an unknown subcommand of `lowbit diffusion` is a clear error", async () => {
  await assert.rejects(() => cmd.main(["smaple"]), /unknown subcommand 'smaple'/);
});

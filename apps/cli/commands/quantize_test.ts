import assert from "node:assert/strict";
import { type Model, readOnnx, writeNpy, writeOnnx } from "@lowbit/graph";
import { fileURLToPath } from "node:url";
import pngjs from "pngjs";
import { runCli } from "../main.ts";

const FIX = fileURLToPath(new URL("../../../fixtures/digits/", import.meta.url));
const MLP = `${FIX}mlp.onnx`, CALIB = `${FIX}calib_x.npy`;

/** Runs the CLI in-process, capturing stdout and stderr. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await runCli(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function files(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lowbit-cli-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Expects exit code 2 with a message matching `re`, and no model or plan written. */
async function expectUserError(dir: string, args: string[], re: RegExp): Promise<void> {
  const before = await files(dir);
  const r = await cli(args);
  assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.err}`);
  assert.match(r.err, re);
  assert.deepEqual(await files(dir), before, "an output was written");
}

Deno.test("quantize writes model, plan and report and prints JSON figures", async () => {
  await withTmp(async (dir) => {
    const r = await cli([
      "quantize",
      MLP,
      "--calib",
      CALIB,
      "--eval",
      `${FIX}eval_x.npy`,
      "--labels",
      `${FIX}eval_y.npy`,
      "--out",
      `${dir}/mlp.onnx`,
      "--json",
    ]);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.deepEqual(await files(dir), ["mlp.onnx", "mlp.plan.json", "mlp.report.html"]);
    assert.ok(s.evaluation.top1_quant > s.evaluation.top1_float - 0.01, r.out);
    assert.ok(s.size_bytes_quant < s.size_bytes_float / 3);
    // The plan replays (and the written model is the same bytes).
    const again = await cli([
      "quantize",
      MLP,
      "--calib",
      CALIB,
      "--plan",
      `${dir}/mlp.plan.json`,
      "--out",
      `${dir}/again.onnx`,
      "--json",
    ]);
    assert.equal(again.code, 0, again.err);
    assert.deepEqual(
      await Deno.readFile(`${dir}/again.onnx`),
      await Deno.readFile(`${dir}/mlp.onnx`),
    );
  });
});

Deno.test("quantize writes a lowbit file that eval runs", async () => {
  await withTmp(async (dir) => {
    const q = await cli([
      "quantize",
      MLP,
      "--calib",
      CALIB,
      "--preset",
      "nvfp4",
      "--out",
      `${dir}/m.lowbit`,
      "--json",
    ]);
    assert.equal(q.code, 0, q.err);
    const r = await cli([
      "eval",
      MLP,
      `${dir}/m.lowbit`,
      "--data",
      `${FIX}eval_x.npy`,
      "--labels",
      `${FIX}eval_y.npy`,
      "--json",
    ]);
    assert.equal(r.code, 0, r.err);
    const e = JSON.parse(r.out);
    for (
      const k of [
        "sqnr_db",
        "cosine",
        "top1_float",
        "top1_quant",
        "top1_agreement",
        "latency_ms_float",
        "latency_ms_quant",
      ]
    ) assert.equal(typeof e[k], "number", k);
    assert.ok(e.top1_agreement > 0.8, r.out);
  });
});

Deno.test("quantize refuses a model with no quantizable layer (exit 2, nothing written)", async () => {
  await withTmp(async (dir) => {
    const m: Model = readOnnx(await Deno.readFile(MLP));
    m.graph.nodes = [{
      name: "flat",
      op: "Flatten",
      domain: "",
      inputs: ["x"],
      outputs: ["logits"],
      attrs: {},
    }];
    m.graph.initializers = new Map();
    await Deno.writeFile(`${dir}/relu.onnx`, writeOnnx(m));
    await expectUserError(
      dir,
      ["quantize", `${dir}/relu.onnx`, "--calib", CALIB, "--out", `${dir}/q.onnx`],
      /no quantizable layer/,
    );
  });
});

Deno.test("quantize refuses calibration data of the wrong shape or dtype", async () => {
  await withTmp(async (dir) => {
    await Deno.writeFile(
      `${dir}/shape.npy`,
      writeNpy({ dtype: "float32", shape: [4, 1, 4, 4], data: new Float32Array(64) }),
    );
    await Deno.writeFile(
      `${dir}/dtype.npy`,
      writeNpy({ dtype: "float64", shape: [4, 1, 8, 8], data: new Float64Array(256) }),
    );
    const out = `${dir}/q.onnx`;
    await expectUserError(
      dir,
      ["quantize", MLP, "--calib", `${dir}/shape.npy`, "--out", out],
      /shape \[4,1,4,4\]/,
    );
    await expectUserError(
      dir,
      ["quantize", MLP, "--calib", `${dir}/dtype.npy`, "--out", out],
      /float64/,
    );
  });
});

Deno.test("quantize refuses an empty image folder and an unreadable image", async () => {
  await withTmp(async (dir) => {
    await Deno.mkdir(`${dir}/empty`);
    await Deno.mkdir(`${dir}/bad`);
    await Deno.writeFile(
      `${dir}/bad/broken.png`,
      new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]),
    );
    const img = ["--size", "8x8", "--channels", "1", "--out", `${dir}/q.onnx`];
    await expectUserError(
      dir,
      ["quantize", MLP, "--calib", `${dir}/empty`, ...img],
      /holds no images/,
    );
    await expectUserError(
      dir,
      ["quantize", MLP, "--calib", `${dir}/bad`, ...img],
      /unreadable image.*|broken\.png/,
    );
  });
});

Deno.test("quantize calibrates on a folder of PNG images", async () => {
  await withTmp(async (dir) => {
    await Deno.mkdir(`${dir}/imgs`);
    const PNG = (pngjs as unknown as {
      PNG: {
        new (o: { width: number; height: number }): { data: Uint8Array };
        sync: { write(p: unknown): Uint8Array };
      };
    }).PNG;
    for (let i = 0; i < 4; i++) {
      const p = new PNG({ width: 16, height: 16 });
      for (let k = 0; k < 256; k++) p.data.set([k % 16 * 16, i * 60, 255 - k, 255], k * 4);
      await Deno.writeFile(`${dir}/imgs/${i}.png`, PNG.sync.write(p));
    }
    const r = await cli([
      "quantize",
      MLP,
      "--calib",
      `${dir}/imgs`,
      "--size",
      "8x8",
      "--channels",
      "1",
      "--out",
      `${dir}/q.onnx`,
      "--json",
    ]);
    assert.equal(r.code, 0, r.err);
  });
});

Deno.test("quantize warns about a rule that matches nothing and still succeeds", async () => {
  await withTmp(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/rules.json`,
      JSON.stringify([{ match: "encoder.*", skip: true }]),
    );
    const r = await cli([
      "quantize",
      MLP,
      "--calib",
      CALIB,
      "--config",
      `${dir}/rules.json`,
      "--out",
      `${dir}/q.onnx`,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /warning: rule 1 'encoder\.\*' matches no quantizable node/);
  });
});

Deno.test("quantize refuses a plan that does not fit the model", async () => {
  await withTmp(async (dir) => {
    const a = await cli(["quantize", MLP, "--calib", CALIB, "--out", `${dir}/mlp.onnx`, "--json"]);
    assert.equal(a.code, 0, a.err);
    await Deno.rename(`${dir}/mlp.plan.json`, `${dir}/../lowbit-plan-${Deno.pid}.json`).catch(
      () => {},
    );
    const plan = `${dir}/../lowbit-plan-${Deno.pid}.json`;
    try {
      await Deno.remove(`${dir}/mlp.onnx`);
      await expectUserError(
        dir,
        [
          "quantize",
          `${FIX}cnn.onnx`,
          "--calib",
          CALIB,
          "--plan",
          plan,
          "--out",
          `${dir}/cnn.onnx`,
        ],
        /node '.*': the plan names this node, but the model has no such node/,
      );
    } finally {
      await Deno.remove(plan).catch(() => {});
    }
  });
});

Deno.test("quantize refuses an output path in a missing folder before any work", async () => {
  await withTmp(async (dir) => {
    await expectUserError(
      dir,
      ["quantize", MLP, "--calib", CALIB, "--out", `${dir}/missing/q.onnx`],
      /output folder .* does not exist/,
    );
  });
});

Deno.test("quantize refuses a lowbit file as input, naming it, instead of failing inside", async () => {
  await withTmp(async (dir) => {
    const lowbit = `${dir}/mlp.lowbit`;
    Deno.writeFileSync(lowbit, new Uint8Array(16));
    await expectUserError(
      dir,
      ["quantize", lowbit, "--calib", CALIB, "--out", `${dir}/q.onnx`],
      /mlp\.lowbit.*lowbit file, already quantized/,
    );
  });
});

Deno.test("quantize leaves no partial output when interrupted with Ctrl-C", async () => {
  await withTmp(async (dir) => {
    const main = fileURLToPath(new URL("../main.ts", import.meta.url));
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        main,
        "quantize",
        `${FIX}vit.onnx`,
        "--calib",
        CALIB,
        "--gptq",
        "--batch-size",
        "1",
        "--out",
        `${dir}/v.onnx`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    await new Promise((r) => setTimeout(r, 2000));
    try {
      child.kill("SIGINT");
    } catch { /* it finished first */ }
    const { code, stderr } = await child.output();
    const names = await files(dir);
    // Either the run finished before the signal, or it stopped with nothing written;
    // never a temporary file or one output without the other.
    if (names.length) {
      assert.deepEqual(names, ["v.onnx", "v.plan.json"]);
      JSON.parse(await Deno.readTextFile(`${dir}/v.plan.json`));
      return;
    }
    assert.equal(code, 130, new TextDecoder().decode(stderr));
  });
});

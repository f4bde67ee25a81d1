import assert from "node:assert/strict";
import { type Model, readOnnx, writeNpy, writeOnnx } from "@lowbit/graph";
import { fileURLToPath } from "node:url";
import pngjs from "pngjs";
import { cli } from "../_cli_test_util.ts";

const FIX = fileURLToPath(new URL("../../../fixtures/digits/", import.meta.url));
const MLP = `${FIX}mlp.onnx`, CALIB = `${FIX}calib_x.npy`;

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

Deno.test("Ctrl-C during evaluation leaves every earlier file as it was and says so", async () => {
  await withTmp(async (dir) => {
    const old: Record<string, string> = {
      "c.onnx": "old model",
      "c.plan.json": "old plan",
      "c.report.html": "old report",
    };
    for (const [k, v] of Object.entries(old)) await Deno.writeTextFile(`${dir}/${k}`, v);
    const main = fileURLToPath(new URL("../main.ts", import.meta.url));
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        main,
        "quantize",
        `${FIX}cnn.onnx`,
        "--calib",
        CALIB,
        "--eval",
        `${FIX}eval_x.npy`,
        "--labels",
        `${FIX}eval_y.npy`,
        "--batch-size",
        "1",
        "--min-sqnr",
        "off",
        "--out",
        `${dir}/c.onnx`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // The staged model appears right before evaluation starts: interrupt then.
    const t0 = Date.now();
    let seen = false;
    while (!seen && Date.now() - t0 < 120_000) {
      seen = (await files(dir)).some((n) => /\.tmp\.onnx$/.test(n));
      if (!seen) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(seen, "evaluation never started");
    child.kill("SIGINT");
    const { code, stderr } = await child.output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 130, err);
    assert.match(err, /interrupted; nothing was written, earlier files are as they were/);
    assert.deepEqual(await files(dir), Object.keys(old).sort());
    for (const [k, v] of Object.entries(old)) {
      assert.equal(await Deno.readTextFile(`${dir}/${k}`), v);
    }
  });
});

Deno.test("Ctrl-C during quantization ends the run at once and leaves earlier files", async () => {
  await withTmp(async (dir) => {
    const main = fileURLToPath(new URL("../main.ts", import.meta.url));
    const run = (out: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", main, "quantize", `${FIX}vit.onnx`, "--calib", CALIB, "--gptq"]
          .concat(["--batch-size", "1", "--out", out]),
        stdout: "null",
        stderr: "piped",
      }).spawn();
    // A whole run first, to time it; the signal then lands half-way, while it computes.
    const t0 = Date.now();
    assert.equal((await run(`${dir}/first.onnx`).output()).code, 0);
    const took = Date.now() - t0;
    await Deno.writeTextFile(`${dir}/v.onnx`, "old model");
    const before = await files(dir);
    const child = run(`${dir}/v.onnx`);
    await new Promise((r) => setTimeout(r, took / 2));
    child.kill("SIGINT");
    const { code } = await child.output();
    assert.equal(code, 130);
    assert.deepEqual(await files(dir), before);
    assert.equal(await Deno.readTextFile(`${dir}/v.onnx`), "old model");
  });
});

Deno.test("a failure after quantizing (bad labels) leaves earlier files as they were", async () => {
  await withTmp(async (dir) => {
    await Deno.writeTextFile(`${dir}/m.onnx`, "old model");
    await Deno.writeTextFile(`${dir}/m.plan.json`, "old plan");
    await Deno.writeFile(
      `${dir}/y.npy`,
      writeNpy({ dtype: "int64", shape: [3], data: new BigInt64Array(3) }),
    );
    const r = await cli([
      "quantize",
      MLP,
      "--calib",
      CALIB,
      "--eval",
      `${FIX}eval_x.npy`,
      "--labels",
      `${dir}/y.npy`,
      "--out",
      `${dir}/m.onnx`,
    ]);
    assert.equal(r.code, 2, r.err);
    assert.deepEqual(await files(dir), ["m.onnx", "m.plan.json", "y.npy"]);
    assert.equal(await Deno.readTextFile(`${dir}/m.onnx`), "old model");
    assert.equal(await Deno.readTextFile(`${dir}/m.plan.json`), "old plan");
  });
});

Deno.test("an output that is one of the run's inputs is refused before any work", async () => {
  await withTmp(async (dir) => {
    const model = `${dir}/mlp.onnx`, calib = `${dir}/x.npy`;
    await Deno.copyFile(MLP, model);
    await Deno.copyFile(CALIB, calib);
    const before = await Deno.readFile(model);
    await Deno.writeTextFile(`${dir}/rules.json`, "[]");
    const cases: [string[], RegExp][] = [
      [["--out", model], /output '.*mlp\.onnx' is the model this run reads/],
      [["--out", `${dir}/./mlp.onnx`], /is the model this run reads/],
      [["--out", `${dir}/x.onnx`, "--report", calib], /is calibration data this run reads/],
      [[
        "--out",
        `${dir}/rules.onnx`,
        "--config",
        `${dir}/rules.json`,
        "--report",
        `${dir}/rules.json`,
      ], /is the rules file/],
      [
        ["--out", `${dir}/q.onnx`, "--eval", `x=${calib}`, "--report", calib],
        /is calibration data|is evaluation data/,
      ],
      [
        ["--out", `${dir}/q.onnx`, "--report", `${dir}/q.onnx`],
        /two outputs of this run are one file/,
      ],
    ];
    for (const [extra, re] of cases) {
      await expectUserError(dir, ["quantize", model, "--calib", calib, ...extra], re);
    }
    // A plan replayed onto its own path.
    const first = await cli([
      "quantize",
      model,
      "--calib",
      calib,
      "--out",
      `${dir}/a.onnx`,
      "--json",
    ]);
    assert.equal(first.code, 0, first.err);
    await expectUserError(
      dir,
      [
        "quantize",
        model,
        "--calib",
        calib,
        "--plan",
        `${dir}/a.plan.json`,
        "--out",
        `${dir}/a.onnx`,
      ],
      /output '.*a\.plan\.json' is the plan this run reads/,
    );
    assert.deepEqual(await Deno.readFile(model), before);
  });
});

Deno.test("a run that writes no report warns that the old one beside the model is stale", async () => {
  await withTmp(async (dir) => {
    const out = `${dir}/m.onnx`;
    const first = await cli([
      "quantize",
      MLP,
      "--calib",
      CALIB,
      "--eval",
      `${FIX}eval_x.npy`,
      "--out",
      out,
      "--json",
    ]);
    assert.equal(first.code, 0, first.err);
    const report = await Deno.readFile(`${dir}/m.report.html`);
    const again = await cli(["quantize", MLP, "--calib", CALIB, "--preset", "w4a8", "--out", out]);
    assert.equal(again.code, 0, again.err);
    assert.match(
      again.err,
      /warning: '.*m\.report\.html' is from an earlier run and no longer describes '.*m\.onnx' \(this run: no --eval data, so no report\); it was left as it was/,
    );
    assert.deepEqual(await Deno.readFile(`${dir}/m.report.html`), report);
    assert.match(await Deno.readTextFile(`${dir}/m.plan.json`), /"preset": "w4a8"/);
  });
});

Deno.test("the summary gives file sizes on disk next to weight sizes", async () => {
  await withTmp(async (dir) => {
    const r = await cli(["quantize", MLP, "--calib", CALIB, "--out", `${dir}/m.lowbit`, "--json"]);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.equal(s.file_bytes.model_in, (await Deno.stat(MLP)).size);
    assert.equal(s.file_bytes.model, (await Deno.stat(`${dir}/m.lowbit`)).size);
    assert.equal(s.file_bytes.plan, (await Deno.stat(`${dir}/m.plan.json`)).size);
    assert.equal(s.file_bytes.report, null);
    const t = await cli(["quantize", MLP, "--calib", CALIB, "--out", `${dir}/m.onnx`]);
    assert.equal(t.code, 0, t.err);
    const onDisk = (await Deno.stat(`${dir}/m.onnx`)).size;
    assert.match(
      t.out,
      new RegExp(`files +${(await Deno.stat(MLP)).size} B → ${onDisk} B on disk`),
    );
  });
});

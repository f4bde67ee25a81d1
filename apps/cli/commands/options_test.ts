// Every numeric option of every command (bench's are its owner's) fed its nonsense values: each
// must exit 2 at parse time with a message that names the flag and its allowed range, and write
// nothing. The ranges are the ones documented in each command's --help.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { cli } from "../_cli_test_util.ts";
import {
  checkedNumber,
  describeRule,
  threadsOption,
  toleranceOption,
  unmetBudgets,
} from "./_options.ts";

const FIX = fileURLToPath(new URL("../../../fixtures/digits/", import.meta.url));
const MLP = `${FIX}mlp.onnx`, CALIB = `${FIX}calib_x.npy`;

/** [command prefix, flag, nonsense values, expected message]. */
const CASES: [string[], string, string[], RegExp][] = [
  [
    ["quantize", MLP, "--calib", CALIB],
    "--gptq-block",
    ["0", "-5", "1.5", "abc", "", "1e9", "0x10", "Infinity", "NaN"],
    /--gptq-block must be an integer in 1\.\.65536/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB],
    "--damp",
    ["0", "-0.1", "2", "x", "Infinity"],
    /--damp must be a number in \(0, 1\]/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB],
    "--batch-size",
    ["0", "-1", "2.5", "many", "1e6"],
    /--batch-size must be an integer in 1\.\.65536/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB],
    "--smoothquant",
    ["-0.5", "1.5", "half"],
    /--smoothquant must be a number in \[0, 1\]/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB],
    "--equalize",
    ["-1", "2", "yes"],
    /--equalize must be a number in \[0, 1\]/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB],
    "--equalize-spectra",
    ["-1", "2", "yes"],
    /--equalize-spectra must be a number in \[0, 1\]/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB],
    "--min-sqnr",
    ["-3", "500", "high", "20dB"],
    /--min-sqnr must be a number in \[0, 200\]/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB],
    "--mask-threshold",
    ["x", "Infinity", "1/2"],
    /--mask-threshold must be a finite number/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB, "--preset", "mixed"],
    "--tolerance",
    ["5", "0.05", "-1%", "100%", "0%", "abc%", "%"],
    /--tolerance must be a percentage of top-1 in \(0%, 100%\) with its unit, e\.g\. 1%/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB, "--preset", "mixed"],
    "--budget",
    ["0", "0bits", "40bits", "-2bits"],
    /--budget must be in \(0, 32\] bits per weight|cannot read budget/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB, "--preset", "mixed"],
    "--budget-size",
    ["0", "0KB", "abc"],
    /--budget-size must be positive|cannot read budget/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB, "--preset", "mixed"],
    "--budget-latency",
    ["0ms", "3KB", "soon"],
    /--budget-latency must be positive|expected a latency budget|cannot read budget/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB],
    "--budget",
    ["4.5bits"],
    /--budget is an option of the mixed-precision search: it needs --preset mixed \(the preset here is 'w8a8'\)/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB, "--preset", "w4a8"],
    "--tolerance",
    ["1%"],
    /--tolerance is an option of the mixed-precision search: it needs --preset mixed/,
  ],
  [
    ["quantize", MLP, "--calib", CALIB],
    "--budget-latency",
    ["1ms"],
    /--budget-latency is an option of the mixed-precision search/,
  ],
  [
    ["eval", MLP, MLP, "--data", CALIB],
    "--threads",
    ["0", "-2", "1.5", "lots", "257"],
    /--threads must be an integer in 1\.\.256/,
  ],
  [
    ["eval", MLP, MLP, "--data", CALIB],
    "--batch-size",
    ["0", "-1", "0.5", "1e6"],
    /--batch-size must be an integer in 1\.\.65536/,
  ],
  [
    ["eval", MLP, MLP, "--data", CALIB],
    "--mask-threshold",
    ["Infinity", "t"],
    /--mask-threshold must be a finite number/,
  ],
  [
    ["run", MLP, "--input", CALIB],
    "--threads",
    ["0", "-1", "2.5", "x", "1000"],
    /--threads must be an integer in 1\.\.256/,
  ],
];

Deno.test("every numeric option refuses its nonsense values with exit 2 and its range", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lowbit-opts-" });
  try {
    let n = 0;
    for (const [prefix, flag, bad, re] of CASES) {
      for (const v of bad) {
        const args = [...prefix, `${flag}=${v}`];
        if (prefix[0] === "quantize") args.push("--out", `${dir}/q.onnx`);
        if (prefix[0] === "run") args.push("--out", `${dir}/y.npy`);
        const r = await cli(args);
        assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code}\n${r.err}`);
        assert.match(r.err, re, `${args.join(" ")}`);
        assert.doesNotMatch(r.err, /internal error|at .*\.ts:\d+/, `${args.join(" ")}: a stack`);
        n++;
      }
    }
    assert.equal([...Deno.readDirSync(dir)].length, 0, "a refused run wrote a file");
    assert.ok(n >= 60, String(n));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--equalize and --equalize-spectra together are refused (the first covers both)", async () => {
  const r = await cli([
    "quantize",
    MLP,
    "--calib",
    CALIB,
    "--equalize",
    "0.5",
    "--equalize-spectra",
    "0.5",
  ]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /--equalize and --equalize-spectra are exclusive/);
});

Deno.test("the separated form '--flag -5' is refused by the parser, not taken as a value", async () => {
  const r = await cli(["quantize", MLP, "--calib", CALIB, "--gptq-block", "-5"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--gptq-block/);
});

Deno.test("checkedNumber accepts the edges of its range and the documented forms", () => {
  const block = { integer: true, min: 1, max: 65536 };
  assert.equal(checkedNumber("1", "--b", block), 1);
  assert.equal(checkedNumber("65536", "--b", block), 65536);
  assert.equal(checkedNumber(" 128 ", "--b", block), 128);
  assert.equal(checkedNumber("1e2", "--b", block), 100);
  assert.equal(checkedNumber(undefined, "--b", block), undefined);
  assert.equal(checkedNumber(".5", "--d", { min: 0, minExclusive: true, max: 1 }), 0.5);
  assert.equal(checkedNumber("1", "--d", { min: 0, minExclusive: true, max: 1 }), 1);
  assert.equal(checkedNumber("-7.25", "--t", {}), -7.25);
  assert.equal(describeRule({ min: 0, max: 200 }), "a number in [0, 200]");
  assert.equal(describeRule({ min: 0, minExclusive: true }), "a number > 0");
});

Deno.test("--threads above the core count is capped to the cores with a warning", () => {
  const cores = navigator.hardwareConcurrency;
  const said: string[] = [];
  assert.equal(threadsOption(String(cores + 1), "eval", (m) => said.push(m)), cores);
  assert.match(said[0], new RegExp(`--threads ${cores + 1} is more than the ${cores} cores`));
  assert.equal(threadsOption("1", "eval", (m) => said.push(m)), 1);
  assert.equal(threadsOption(undefined, "eval", (m) => said.push(m)), 1);
  assert.equal(said.length, 1);
});

Deno.test("--tolerance keeps a valid percentage as written", () => {
  assert.equal(toleranceOption("1%"), "1%");
  assert.equal(toleranceOption("0.5 %"), "0.5 %");
  assert.equal(toleranceOption(undefined), undefined);
});

Deno.test("an unmet budget is a warning naming the flag, the budget and what was reached", () => {
  const cost = { avgBits: 4.25, sizeBytes: 5584, bops: 3e6, latencyMs: 2.5 };
  assert.deepEqual(
    unmetBudgets({ cost }, [
      { kind: "latency", ms: 1 },
      { kind: "bits", bits: 4.5 },
      { kind: "size", bytes: 5000 },
      { kind: "bops", bops: 4e6 },
    ]),
    [
      "--budget-latency 1 ms is NOT met: the smallest allocation the search found measures 2.500 ms",
      "--budget-size 5000 B is NOT met: the smallest allocation the search found measures 5584 B",
    ],
  );
  // A latency budget the search could not measure is not claimed as met.
  assert.equal(
    unmetBudgets({ cost: { ...cost, latencyMs: undefined } }, [{ kind: "latency", ms: 1 }])
      .length,
    1,
  );
});

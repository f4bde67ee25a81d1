// ONNX's backend node tests (onnx 1.12, Debian package libonnx-testdata) on the executor: every
// case with tensor inputs and outputs runs its model on each test_data_set_* and compares with
// the expected outputs as ONNX's runner does (rtol 1e-3, atol 1e-7; integers, bools and strings
// exactly). The pass count is reported over the 782 cases with numeric tensors (function-expanded
// variants and string cases run too and are reported apart); cases with sequence / optional
// values are not run.
// Cases listed in _onnx_node_suite_lists.ts are expected to fail (SKIP: deliberately
// unsupported; PENDING: another part of issue 14); the test fails when any other case fails,
// when a listed case passes (so the lists stay honest), and when a listed case computes wrong
// values instead of refusing with an error. FOLLOWS_ONNXRUNTIME cases (ONNX's reference and
// onnxruntime disagree) are compared with onnxruntime-web on the same model and inputs instead.

import assert from "node:assert/strict";
import {
  type CaseResult,
  listCases,
  NODE_TEST_DIR,
  runAgainstOrt,
  runCase,
} from "./_onnx_node_suite.ts";
import { FOLLOWS_ONNXRUNTIME, PENDING, SKIP, SKIP_OTHER } from "./_onnx_node_suite_lists.ts";

/** Cases with numeric tensors among onnx 1.12's node tests, function-expanded variants aside. */
const NUMERIC_CASES = 782;

Deno.test("ONNX backend node tests (libonnx-testdata): every numeric case passes or is listed", async () => {
  const cases = listCases(NODE_TEST_DIR); // throws, naming the package to install, when absent
  const results: CaseResult[] = [];
  for (const c of cases) results.push(await runCase(c));
  // Every case that runs (string cases too) must pass or be listed; numeric ones are counted.
  const ran = results.filter((r) => r.status !== "non-numeric");
  const numeric = ran.filter((r) => !r.strings);
  const strings = ran.filter((r) => r.strings);
  const main = numeric.filter((r) => !r.name.endsWith("_expanded"));
  const expanded = numeric.filter((r) => r.name.endsWith("_expanded"));
  const passed = (rs: CaseResult[]) => rs.filter((r) => r.status === "pass").length;
  const listed = (n: string) =>
    Object.hasOwn(SKIP, n) || Object.hasOwn(PENDING, n) || Object.hasOwn(FOLLOWS_ONNXRUNTIME, n);
  const pct = (100 * passed(main) / main.length).toFixed(1);
  console.log(
    `ONNX node tests: ${passed(main)} / ${main.length} numeric cases pass (${pct}%); ` +
      `function-expanded variants ${passed(expanded)} / ${expanded.length}; ` +
      `string cases ${passed(strings)} / ${strings.length}; ` +
      `${Object.keys(SKIP).length} skipped, ${Object.keys(PENDING).length} pending, ` +
      `${Object.keys(FOLLOWS_ONNXRUNTIME).length} checked against onnxruntime instead; ` +
      `${results.length - ran.length} cases with sequence / optional values not run`,
  );
  const unexpected = ran.filter((r) => r.status !== "pass" && !listed(r.name));
  const stale = ran.filter((r) => r.status === "pass" && listed(r.name));
  // A listed case must fail loudly: wrong values without an error are never acceptable.
  const silent = ran.filter((r) =>
    r.status === "fail" && listed(r.name) && !Object.hasOwn(FOLLOWS_ONNXRUNTIME, r.name)
  );
  // Where lowbit follows onnxruntime over ONNX's reference, onnxruntime-web is the oracle.
  const ortProblems: string[] = [];
  for (const name of Object.keys(FOLLOWS_ONNXRUNTIME)) {
    const c = cases.find((x) => x.name === name);
    if (c === undefined) continue; // reported as unknown below
    const r = await runAgainstOrt(c);
    if (r.ort !== undefined) ortProblems.push(`  ${name} differs from onnxruntime-web: ${r.ort}`);
    else if (r.matchesExpected) ortProblems.push(`  ${name} matches ONNX's outputs: unlist it`);
  }
  const known = new Set(ran.map((r) => r.name));
  const unknown = [
    ...Object.keys(SKIP),
    ...Object.keys(PENDING),
    ...Object.keys(FOLLOWS_ONNXRUNTIME),
  ].filter((n) => !known.has(n));
  const show = (rs: CaseResult[]) => rs.map((r) => `  ${r.name}: ${r.status} ${r.detail ?? ""}`);
  assert.deepEqual(
    [
      ...show(unexpected),
      ...stale.map((r) => `  ${r.name} passes: remove it from the skip / pending list`),
      ...show(silent),
      ...ortProblems,
      ...unknown.map((n) => `  ${n} is listed but is not a runnable case of ${NODE_TEST_DIR}`),
    ],
    [],
  );
  assert.equal(main.length, NUMERIC_CASES, "the numeric cases of onnx 1.12's node tests");
});

Deno.test("libonnx-testdata's PyTorch-exported and simple models pass, or are listed", async () => {
  const dirs = ["pytorch-converted", "pytorch-operator", "simple"];
  const results: CaseResult[] = [];
  for (const d of dirs) {
    for (const c of listCases(`${NODE_TEST_DIR}/../${d}`)) results.push(await runCase(c));
  }
  const listed = (n: string) => Object.hasOwn(SKIP_OTHER, n);
  const pass = results.filter((r) => r.status === "pass").length;
  console.log(`libonnx-testdata ${dirs.join(", ")}: ${pass} / ${results.length} pass`);
  assert.deepEqual(
    [
      ...results.filter((r) => r.status !== "pass" && !listed(r.name)).map((r) =>
        `  ${r.name}: ${r.status} ${r.detail ?? ""}`
      ),
      ...results.filter((r) => r.status === "pass" && listed(r.name)).map((r) =>
        `  ${r.name} passes: remove it from SKIP_OTHER`
      ),
      ...results.filter((r) => r.status === "fail" && listed(r.name)).map((r) =>
        `  ${r.name} computes wrong values instead of refusing: ${r.detail}`
      ),
      ...Object.keys(SKIP_OTHER).filter((n) => !results.some((r) => r.name === n)).map((n) =>
        `  ${n} is listed but not a case`
      ),
    ],
    [],
  );
  assert.ok(results.length >= 140, `${results.length} cases found`);
});

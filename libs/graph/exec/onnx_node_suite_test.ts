// ONNX's backend node tests (onnx 1.12, Debian package libonnx-testdata) on the executor: every
// case with numeric tensors runs its model on each test_data_set_* and compares with the
// expected outputs as ONNX's runner does (rtol 1e-3, atol 1e-7; integers and bools exactly).
// Cases listed in _onnx_node_suite_lists.ts are expected to fail (SKIP: deliberately
// unsupported; PENDING: another part of issue 14); the test fails when any other case fails,
// when a listed case passes (so the lists stay honest), and when a listed case computes wrong
// values instead of refusing with an error.

import assert from "node:assert/strict";
import { type CaseResult, listCases, NODE_TEST_DIR, runCase } from "./_onnx_node_suite.ts";
import { PENDING, SKIP } from "./_onnx_node_suite_lists.ts";

/** Cases with numeric tensors among onnx 1.12's node tests, function-expanded variants aside. */
const NUMERIC_CASES = 782;

Deno.test("ONNX backend node tests (libonnx-testdata): every numeric case passes or is listed", async () => {
  const cases = listCases(NODE_TEST_DIR); // throws, naming the package to install, when absent
  const results: CaseResult[] = [];
  for (const c of cases) results.push(await runCase(c));
  const numeric = results.filter((r) => r.status !== "non-numeric");
  const main = numeric.filter((r) => !r.name.endsWith("_expanded"));
  const expanded = numeric.filter((r) => r.name.endsWith("_expanded"));
  const passed = (rs: CaseResult[]) => rs.filter((r) => r.status === "pass").length;
  const listed = (n: string) => Object.hasOwn(SKIP, n) || Object.hasOwn(PENDING, n);
  const pct = (100 * passed(main) / main.length).toFixed(1);
  console.log(
    `ONNX node tests: ${passed(main)} / ${main.length} numeric cases pass (${pct}%); ` +
      `function-expanded variants ${passed(expanded)} / ${expanded.length}; ` +
      `${Object.keys(SKIP).length} skipped, ${Object.keys(PENDING).length} pending; ` +
      `${results.length - numeric.length} non-numeric cases not run`,
  );
  const unexpected = numeric.filter((r) => r.status !== "pass" && !listed(r.name));
  const stale = numeric.filter((r) => r.status === "pass" && listed(r.name));
  // A listed case must fail loudly: wrong values without an error are never acceptable.
  const silent = numeric.filter((r) => r.status === "fail" && listed(r.name));
  const known = new Set(numeric.map((r) => r.name));
  const unknown = [...Object.keys(SKIP), ...Object.keys(PENDING)].filter((n) => !known.has(n));
  const show = (rs: CaseResult[]) => rs.map((r) => `  ${r.name}: ${r.status} ${r.detail ?? ""}`);
  assert.deepEqual(
    [
      ...show(unexpected),
      ...stale.map((r) => `  ${r.name} passes: remove it from the skip / pending list`),
      ...show(silent),
      ...unknown.map((n) => `  ${n} is listed but is not a numeric case of ${NODE_TEST_DIR}`),
    ],
    [],
  );
  assert.equal(main.length, NUMERIC_CASES, "the numeric cases of onnx 1.12's node tests");
});

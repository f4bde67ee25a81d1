import assert from "node:assert/strict";
import { caseSpec, keepingWorker, makeCopies } from "./_cases.ts";

Deno.test("caseSpec() names the tuple's fields", () => {
  assert.deepEqual(caseSpec("lowbit:s8s8", ["gemv", 1, 64, 32, 2]), {
    impl: "lowbit:s8s8",
    op: "gemv",
    M: 1,
    N: 64,
    K: 32,
    threads: 2,
  });
});

Deno.test("makeCopies() returns copy c's weights and activations at index c", () => {
  const { packed, acts } = makeCopies(3, (c) => [`w${c}`, c * 10], () => {
    throw new Error("nothing to free");
  });
  assert.deepEqual(packed, ["w0", "w1", "w2"]);
  assert.deepEqual(acts, [0, 10, 20]);
});

Deno.test("makeCopies() frees the weights made before a failing copy and rethrows", () => {
  const freed: string[] = [];
  const boom = new Error("copy 2 failed");
  assert.throws(
    () =>
      makeCopies(4, (c) => {
        if (c === 2) throw boom;
        return [`w${c}`, c];
      }, (w) => freed.push(w)),
    (e) => e === boom,
  );
  assert.deepEqual(freed, ["w0", "w1"]);
});

Deno.test("keepingWorker() puts back a global Worker the callback replaced", async () => {
  const g = globalThis as { Worker?: unknown };
  const before = g.Worker;
  const got = await keepingWorker(() => {
    g.Worker = class Fake {};
    return Promise.resolve(42);
  });
  assert.equal(got, 42);
  assert.equal(g.Worker, before);
});

import assert from "node:assert/strict";
import { loadCorpus, runFuzz } from "./_fuzz.ts";

const corpus = loadCorpus();

for (
  const [kind, cases] of [["onnx", 300], ["safetensors", 200], ["npy", 200], [
    "lowbit",
    100,
  ]] as const
) {
  Deno.test(`fuzz: ${cases} mutated ${kind} files only ever raise LowbitError`, () => {
    const r = runFuzz(corpus, cases, 20261123 + cases, [kind]);
    assert.deepEqual(r.failures.slice(0, 3), []);
    const rejected = Object.values(r.rejected).reduce((a, b) => a + b, 0);
    assert.equal(r.accepted + rejected, cases);
    assert.ok(rejected > cases / 4, `only ${rejected} of ${cases} rejected`);
  });
}

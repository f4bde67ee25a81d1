import assert from "node:assert/strict";
import * as all from "./mod.ts";
import * as files from "./onnx_file.ts";
import * as inMemory from "./in_memory.ts";

Deno.test("in_memory.ts exports @lowbit/graph's values except onnx_file.ts's", () => {
  const want = Object.keys(all).filter((k) => !(k in files)).sort();
  assert.deepEqual(Object.keys(inMemory).sort(), want);
  assert.ok(Object.keys(files).length >= 3 && want.length > 50);
});

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { encodeOnnx, readOnnx } from "./onnx.ts";
import { fileExternalData, readOnnxFile, writeOnnxFile } from "./onnx_file.ts";

const MLP = "fixtures/digits/mlp.onnx";

Deno.test("readOnnx reads external data through baseDir or a source, like readOnnxFile", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = await readOnnxFile(MLP);
    await writeOnnxFile(`${dir}/m.onnx`, model, { externalData: { threshold: 256 } });
    const bytes = await Deno.readFile(`${dir}/m.onnx`);
    assert.ok(bytes.length < 4096, `tensors went external (${bytes.length} bytes inline)`);
    assert.deepStrictEqual(readOnnx(bytes, { baseDir: dir }), model);
    const src = fileExternalData(dir);
    try {
      assert.deepStrictEqual(readOnnx(bytes, { externalData: src }), model);
    } finally {
      src.close();
    }
    assert.deepStrictEqual(await readOnnxFile(`${dir}/m.onnx`), model);
    // Without the data file: an IO_ERROR naming it.
    await Deno.remove(`${dir}/m.onnx.data`);
    assert.throws(
      () => readOnnx(bytes, { baseDir: dir }),
      (e) => e instanceof LowbitError && e.code === "IO_ERROR" && /m\.onnx\.data/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodeOnnx aligns tensors of 1 MiB and more to 4 KiB in the sink", () => {
  const n = 1 << 18; // 1 MiB of float32
  const model = readOnnx(Deno.readFileSync(MLP));
  const big = new Float32Array(n).map((_, i) => i % 7);
  model.graph.initializers.set("big", { dtype: "float32", shape: [n], data: big });
  const parts: Uint8Array[] = [];
  const sink = {
    location: "d.bin",
    threshold: 16,
    offset: 0,
    write(b: Uint8Array) {
      parts.push(b.slice());
      this.offset += b.length;
    },
  };
  const bytes = encodeOnnx(model, sink);
  const data = new Uint8Array(sink.offset);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  const back = readOnnx(bytes, {
    externalData: { size: () => data.length, read: (_l, off, len) => data.slice(off, off + len) },
  });
  assert.deepStrictEqual(back.graph.initializers.get("big")?.data, big);
  // Where it landed: a multiple of 4096 (the tensors before it are smaller than 1 MiB).
  const raw = new Uint8Array(big.buffer);
  let at = -1;
  for (let i = 0; i + 8 <= data.length && at < 0; i += 4096) {
    if (data.subarray(i, i + 64).every((v, k) => v === raw[k])) at = i;
  }
  assert.ok(at > 0 && at % 4096 === 0, `big tensor at ${at}`);
});

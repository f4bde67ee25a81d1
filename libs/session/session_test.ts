import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { readNpy, writeNpy } from "@lowbit/graph";
import { decodeBase64 } from "@lowbit/kernels";
import { single as intGemm } from "../../kernels/gemm/_int_gemm_wasm.ts";
import { isLowbitBytes, loadModel } from "./mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const DIGITS = `${ROOT}fixtures/digits/`;
const N = 8;
const eval_x = readNpy(Deno.readFileSync(`${DIGITS}eval_x.npy`));
const x = (eval_x.data as Float32Array).slice(0, N * 64);

function close(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]),
      `[${i}] ${got[i]} vs ${want[i]}`,
    );
  }
}

function code(c: string, re?: RegExp): (e: unknown) => boolean {
  return (e) =>
    e instanceof LowbitError && e.code === c && (re === undefined || re.test(e.message));
}

Deno.test("loadModel runs float ONNX like torch (the fixtures' stored logits), any thread count", async () => {
  for (const name of ["mlp", "cnn", "vit"]) {
    const torch = readNpy(Deno.readFileSync(`${DIGITS}${name}_eval_logits.npy`));
    const want = (torch.data as Float32Array).slice(0, N * 10);
    // Two threads (a worker pool) on the CNN only: each pool starts its own worker.
    for (const threads of name === "cnn" ? [1, 2] : [1]) {
      const s = await loadModel(Deno.readFileSync(`${DIGITS}${name}.onnx`), { threads });
      assert.deepEqual([s.inputNames, s.outputNames], [["x"], ["logits"]]);
      const y = await s.run({ x: { data: x, dims: [N, 1, 8, 8] } });
      assert.deepEqual(y.logits.dims, [N, 10]);
      assert.ok(y.logits.data instanceof Float32Array);
      close(y.logits.data as Float32Array, want, 1e-4, 1e-4);
    }
  }
});

Deno.test("loadModel takes QDQ ONNX and lowbit files, told apart by content (= lowbit run)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lowbit_session_" });
  try {
    Deno.writeFileSync(
      `${dir}/x.npy`,
      writeNpy({ dtype: "float32", shape: [N, 1, 8, 8], data: x }),
    );
    for (const out of ["m.qdq.onnx", "m.lowbit"]) {
      const cli = (args: string[]) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", `${ROOT}apps/cli/main.ts`, ...args],
          cwd: ROOT,
          stdout: "null",
          stderr: "piped",
        }).output();
      const q = await cli([
        "quantize",
        "fixtures/digits/cnn.onnx",
        "--calib",
        "fixtures/digits/calib_x.npy",
        "--out",
        `${dir}/${out}`,
        "--no-report",
        "--json",
      ]);
      assert.ok(q.success, new TextDecoder().decode(q.stderr));
      const r = await cli([
        "run",
        `${dir}/${out}`,
        "--input",
        `${dir}/x.npy`,
        "--out",
        `${dir}/y.npy`,
      ]);
      assert.ok(r.success, new TextDecoder().decode(r.stderr));
      const want = readNpy(Deno.readFileSync(`${dir}/y.npy`)).data as Float32Array;
      const bytes = Deno.readFileSync(`${dir}/${out}`);
      assert.equal(isLowbitBytes(bytes), out.endsWith(".lowbit"));
      const s = await loadModel(bytes);
      const y = await s.run({ x: { data: x, dims: [N, 1, 8, 8] } });
      close(y.logits.data as Float32Array, want, 1e-6, 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadModel refuses bad bytes and options with clear errors", async () => {
  const mlp = Deno.readFileSync(`${DIGITS}mlp.onnx`);
  await assert.rejects(() => loadModel(new Uint8Array([1, 2, 3, 4])), code("PARSE_ERROR"));
  await assert.rejects(() => loadModel(mlp.subarray(0, 1000)), code("PARSE_ERROR"));
  await assert.rejects(
    () => loadModel([1, 2] as unknown as Uint8Array),
    code("INVALID_ARGUMENT", /Uint8Array/),
  );
  await assert.rejects(() => loadModel(mlp, { threads: 0 }), code("INVALID_ARGUMENT", /threads/));
  const intModule = new WebAssembly.Module(decodeBase64(intGemm));
  await assert.rejects(
    () => loadModel(mlp, { wasm: { "int_gemm.wasm": intModule } }),
    code("INVALID_ARGUMENT", /lacks float_gemm\.wasm/),
  );
  await assert.rejects(
    () =>
      loadModel(mlp, {
        wasm: {
          "int_gemm.wasm": intModule,
          "float_gemm.wasm": new Uint8Array(8) as unknown as WebAssembly.Module,
        },
      }),
    code("INVALID_ARGUMENT", /not a WebAssembly.Module/),
  );
  // A truncated lowbit file (safetensors header intact, data cut) is a parse error too.
  const header = new TextEncoder().encode(
    '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}',
  );
  const st = new Uint8Array(8 + header.length + 4);
  new DataView(st.buffer).setUint32(0, header.length, true);
  st.set(header, 8);
  assert.ok(isLowbitBytes(st));
  await assert.rejects(() => loadModel(st), (e) => e instanceof LowbitError);
});

Deno.test("Session.run checks feeds: names, dims, element types", async () => {
  const s = await loadModel(Deno.readFileSync(`${DIGITS}mlp.onnx`));
  const dims = [N, 1, 8, 8];
  await assert.rejects(
    () => s.run({ x: { data: x, dims }, y: { data: x, dims } }),
    code("UNKNOWN_NAME", /not an input/),
  );
  await assert.rejects(() => s.run({}), code("INVALID_ARGUMENT", /input not given/));
  await assert.rejects(
    () => s.run({ x: { data: x, dims: [N, 64, 2] } }),
    code("SHAPE_MISMATCH", /512 elements, dims \[8,64,2\] make 1024/),
  );
  await assert.rejects(
    () => s.run({ x: { data: new Int32Array(N * 64), dims } }),
    code("INVALID_ARGUMENT", /expects float32, data is int32/),
  );
  await assert.rejects(
    () => s.run({ x: { data: [1, 2] as unknown as Float32Array, dims: [2] } }),
    code("INVALID_ARGUMENT", /typed array/),
  );
  await assert.rejects(
    () => s.run({ x: { data: x, dims: [N, 1, 8, 8.5] } }),
    code("INVALID_ARGUMENT", /non-negative integers/),
  );
  // float64 data is narrowed to the float32 the model takes (as lowbit run does with .npy).
  const a = await s.run({ x: { data: x, dims } });
  const b = await s.run({ x: { data: Float64Array.from(x), dims } });
  assert.deepEqual(b.logits.data, a.logits.data);
});

Deno.test("Session.close stops the worker pool; run after close is a clear error", async () => {
  const torch = readNpy(Deno.readFileSync(`${DIGITS}cnn_eval_logits.npy`));
  const want = (torch.data as Float32Array).slice(0, N * 10);
  const s = await loadModel(Deno.readFileSync(`${DIGITS}cnn.onnx`), { threads: 2 });
  const y = await s.run({ x: { data: x, dims: [N, 1, 8, 8] } });
  close(y.logits.data as Float32Array, want, 1e-4, 1e-4);
  // Closing stops the executor's pool (Executor.close; the pool's own tests check its workers).
  await s.close();
  await assert.rejects(
    s.run({ x: { data: x, dims: [N, 1, 8, 8] } }),
    code("INVALID_ARGUMENT", /closed/),
  );
  await s.close(); // twice: harmless
  // Another session of the same model still runs (close frees this session's state only).
  const t = await loadModel(Deno.readFileSync(`${DIGITS}cnn.onnx`));
  close(
    (await t.run({ x: { data: x, dims: [N, 1, 8, 8] } })).logits.data as Float32Array,
    want,
    1e-4,
    1e-4,
  );
  await t.close();
});

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { writeNpy } from "@lowbit/graph";
import jpeg from "jpeg-js";
import pngjs from "pngjs";
import {
  checkDataset,
  loadDataset,
  loadImageFolder,
  parseDataSpecs,
  parseImageSpec,
  sliceBatch,
} from "./data.ts";

const X = [{ name: "x", dtype: "float32" as const, shape: ["N", 1, 8, 8] }];

type PngCtor = {
  new (o: { width: number; height: number }): { data: Uint8Array };
  sync: { write(p: unknown): Uint8Array };
};
const PNG = (pngjs as unknown as { PNG: PngCtor }).PNG;
const jpegEncode = (jpeg as unknown as {
  encode(i: { width: number; height: number; data: Uint8Array }, q: number): { data: Uint8Array };
}).encode;

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lowbit-data-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadImageFolder() decodes PNG and JPEG, resizes, normalises, in NCHW and NHWC", async () => {
  await withTmp(async (dir) => {
    const rgba = new Uint8Array(4 * 4 * 4);
    for (let i = 0; i < 16; i++) rgba.set([255, 0, 0, 255], i * 4); // pure red 4×4
    const png = new PNG({ width: 4, height: 4 });
    png.data.set(rgba);
    await Deno.writeFile(`${dir}/a.png`, PNG.sync.write(png));
    await Deno.writeFile(`${dir}/b.jpg`, jpegEncode({ width: 4, height: 4, data: rgba }, 100).data);
    await Deno.writeTextFile(`${dir}/notes.txt`, "ignored");
    const spec = {
      size: [2, 2] as [number, number],
      channels: 3 as const,
      mean: [0.5],
      std: [0.5],
    };
    const nchw = await loadImageFolder(dir, { ...spec, layout: "NCHW" });
    assert.deepEqual(nchw.shape, [2, 3, 2, 2]);
    const d = nchw.data as Float32Array;
    assert.ok(Math.abs(d[0] - 1) < 1e-6 && Math.abs(d[4] + 1) < 1e-6, `${d.slice(0, 12)}`); // R=1 → 1, G=0 → -1
    assert.ok(Math.abs(d[12] - 1) < 0.05, "JPEG red channel"); // lossy
    const nhwc = await loadImageFolder(dir, { ...spec, layout: "NHWC" });
    assert.deepEqual(nhwc.shape, [2, 2, 2, 3]);
    const gray = await loadImageFolder(dir, {
      ...spec,
      channels: 1,
      layout: "NCHW",
      mean: [0],
      std: [1],
    });
    assert.ok(Math.abs((gray.data as Float32Array)[0] - 0.299) < 1e-6);
  });
});

Deno.test("loadImageFolder() names an unreadable image and an empty folder", async () => {
  await withTmp(async (dir) => {
    const spec = {
      size: [8, 8] as [number, number],
      layout: "NCHW" as const,
      channels: 1 as const,
      mean: [0],
      std: [1],
    };
    await assert.rejects(() => loadImageFolder(dir, spec), /holds no images/);
    await Deno.writeFile(`${dir}/x.jpg`, new Uint8Array([0xff, 0xd8, 0, 1, 2]));
    await assert.rejects(
      () => loadImageFolder(dir, spec),
      (e: unknown) =>
        e instanceof LowbitError && e.code === "PARSE_ERROR" && /x\.jpg/.test(e.message),
    );
  });
});

Deno.test("loadDataset() checks shape, dtype, names and sample counts against the model", async () => {
  await withTmp(async (dir) => {
    const w = (name: string, dtype: "float32" | "float64" | "int64", shape: number[]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = dtype === "float32"
        ? new Float32Array(n)
        : dtype === "float64"
        ? new Float64Array(n)
        : new BigInt64Array(n);
      return Deno.writeFile(`${dir}/${name}`, writeNpy({ dtype, shape, data }));
    };
    await w("ok.npy", "float32", [3, 1, 8, 8]);
    await w("shape.npy", "float32", [3, 8, 8]);
    await w("dtype.npy", "float64", [3, 1, 8, 8]);
    assert.equal((await loadDataset([`${dir}/ok.npy`], X)).count, 3);
    assert.equal((await loadDataset([`x=${dir}/ok.npy`], X)).count, 3);
    await assert.rejects(() => loadDataset([`${dir}/shape.npy`], X), /rank 3.*rank 4/);
    await assert.rejects(
      () => loadDataset([`${dir}/dtype.npy`], X),
      /float64, the model input is float32/,
    );
    await assert.rejects(() => loadDataset([`y=${dir}/ok.npy`], X), /needs input 'x'/);
    await assert.rejects(() => loadDataset([`${dir}/missing.npy`], X), /not found/);
    await assert.rejects(() => loadDataset([dir], X), /folder of images/);
  });
});

Deno.test("parseDataSpecs() and parseImageSpec() reject ambiguous or bad options", () => {
  const two = [X[0], { ...X[0], name: "mask" }];
  assert.throws(() => parseDataSpecs(["a.npy"], two), /name each/);
  assert.deepEqual(parseDataSpecs(["x=a.npy", "mask=b.npy"], two), { x: "a.npy", mask: "b.npy" });
  assert.throws(() => parseImageSpec({ size: "0x4" }), /--size/);
  assert.throws(() => parseImageSpec({ layout: "CHW" }), /--layout/);
  assert.throws(() => parseImageSpec({ std: "0" }), /--std/);
  assert.throws(
    () =>
      checkDataset({
        count: 0,
        inputs: { x: { dtype: "float32", shape: [0, 1, 8, 8], data: new Float32Array() } },
      }, X),
    /no samples/,
  );
});

Deno.test("loadDataset() takes a whole non-batched input and a constant (--calib sr=16000)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A graph input of fixed shape [5, 3] (one whole graph) and a batched one.
    const inputs = [
      { name: "nodes", dtype: "float32" as const, shape: [5, 3] },
      { name: "sr", dtype: "int64" as const, shape: [] },
      { name: "x", dtype: "float32" as const, shape: ["N", 2] },
    ];
    const nodes = {
      dtype: "float32" as const,
      shape: [5, 3],
      data: new Float32Array(15).map((_, i) => i),
    };
    const xs = {
      dtype: "float32" as const,
      shape: [4, 2],
      data: new Float32Array(8).map((_, i) => i),
    };
    await Deno.writeFile(`${dir}/nodes.npy`, writeNpy(nodes));
    await Deno.writeFile(`${dir}/x.npy`, writeNpy(xs));
    const d = await loadDataset([`nodes=${dir}/nodes.npy`, "sr=16000", `x=${dir}/x.npy`], inputs);
    assert.equal(d.count, 4);
    assert.deepEqual(Object.keys(d.whole!).sort(), ["nodes", "sr"]);
    assert.deepEqual(d.whole!.sr, { dtype: "int64", shape: [], data: BigInt64Array.of(16000n) });
    // Every batch gets the whole inputs as they are and a slice of the batched one.
    const b = sliceBatch(d, 1, 3);
    assert.equal(b.nodes, d.whole!.nodes);
    assert.deepEqual(b.x.shape, [2, 2]);
    // Only whole inputs: one sample.
    const one = await loadDataset([`nodes=${dir}/nodes.npy`, "sr=8000"], inputs.slice(0, 2));
    assert.equal(one.count, 1);
    // A constant for an input of dynamic shape is refused, naming it.
    await assert.rejects(
      () => loadDataset(["x=3"], [inputs[2]]),
      (e: unknown) =>
        e instanceof LowbitError && e.subject.tensor === "x" &&
        /static input shape/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadDataset() gives named inputs whole whatever their shape (--whole)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const inputs = [
      { name: "x", dtype: "float32" as const, shape: ["N", 3] },
      { name: "edges", dtype: "int64" as const, shape: [2, "E"] },
    ];
    await Deno.writeFile(
      `${dir}/x.npy`,
      writeNpy({ dtype: "float32", shape: [5, 3], data: new Float32Array(15) }),
    );
    await Deno.writeFile(
      `${dir}/e.npy`,
      writeNpy({ dtype: "int64", shape: [2, 4], data: new BigInt64Array(8) }),
    );
    // Without --whole the two disagree on the sample count (5 nodes vs 2 edge rows).
    await assert.rejects(
      () => loadDataset([`x=${dir}/x.npy`, `edges=${dir}/e.npy`], inputs),
      LowbitError,
    );
    const d = await loadDataset(
      [`x=${dir}/x.npy`, `edges=${dir}/e.npy`],
      inputs,
      undefined,
      "data",
      ["x", "edges"],
    );
    assert.equal(d.count, 1);
    assert.deepEqual(sliceBatch(d, 0, 1).edges.shape, [2, 4]);
    await assert.rejects(
      () => loadDataset([`x=${dir}/x.npy`], inputs.slice(0, 1), undefined, "data", ["nodes"]),
      /--whole names 'nodes', which is not a model input/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

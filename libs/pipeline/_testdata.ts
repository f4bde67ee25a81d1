// Private test helpers: the digits fixtures as datasets.

import { type Model, readNpy, readOnnx, type TensorData } from "@lowbit/graph";
import type { Dataset } from "./data.ts";
import type { Layer } from "./layers.ts";

const ROOT = new URL("../../fixtures/digits/", import.meta.url);

/** Reads a digits fixture model ("mlp", "cnn", "vit"). */
export async function digitsModel(name: string): Promise<Model> {
  return readOnnx(await Deno.readFile(new URL(`${name}.onnx`, ROOT)));
}

/** The calibration split (200 samples). */
export async function digitsCalib(): Promise<Dataset> {
  const x = readNpy(await Deno.readFile(new URL("calib_x.npy", ROOT)));
  return { inputs: { x }, count: x.shape[0] };
}

/** The evaluation split (497 samples) and its labels. */
export async function digitsEval(): Promise<{ data: Dataset; labels: TensorData }> {
  const x = readNpy(await Deno.readFile(new URL("eval_x.npy", ROOT)));
  const labels = readNpy(await Deno.readFile(new URL("eval_y.npy", ROOT)));
  return { data: { inputs: { x }, count: x.shape[0] }, labels };
}

/** Path of a fixture file. */
export function digitsPath(file: string): string {
  return new URL(file, ROOT).pathname;
}

/** A Gemm layer "fc" with 10 × 32 weights (W) on input x, for cost and candidate tests. */
export const fcLayer: Layer = {
  node: "fc",
  op: "Gemm",
  input: "x",
  weight: "W",
  shape: [10, 32],
  outAxis: 0,
  inAxis: 1,
  window: 1,
  groups: 1,
  out: 10,
  in: 32,
};

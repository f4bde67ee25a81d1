/**
 * Latency of one layer in one (weight format, activation format) candidate,
 * measured on our own kernels (`@lowbit/kernels`) on this machine: the layer's
 * GEMM (M = output positions per sample, K = reduction, N = outputs) with the
 * kernel that runs that pair, as the quantized executor picks it —
 * with integer activations (int8, the `mixed` preset's): s8 GEMM for int5..int8
 * weights, s4 GEMM for int2..int4 (nothing narrower exists); the minifloat GEMM
 * for fp8 / fp6 / fp4 / MX / NVFP4 weights whatever the activations; with float
 * inputs ("none") or minifloat activations (fp8: there is no fp8-activation
 * kernel, the input is fake-quantized and the GEMM runs in float) integer
 * weights are dequantized once and run on the f32 GEMM, so their latency is the
 * f32 kernel's (the input's quantize-dequantize is not timed).
 * Results go to core's latency table, cached on disk (`.lowbit-cache/latency.json`),
 * keyed by the weight format for int8 activations and `weight@activation` otherwise.
 *
 * @module
 */

import { getFormat, type WeightKernel, weightKernel } from "@lowbit/core";
import {
  gemmF32,
  gemmMinifloat,
  gemmS4,
  gemmS8,
  type IntKernels,
  loadIntKernels,
  type MinifloatWeightFormat,
  packF32B,
  packMinifloatB,
  packS4,
  packS8,
} from "@lowbit/kernels";
import type { Layer } from "../layers.ts";
import type { Candidate } from "./candidates.ts";

/** Which kernel runs a weight format (core's `WeightKernel`). */
export type LatencyKernel = WeightKernel;

/**
 * The kernel that runs a weight format with a given activation format.
 *
 * @param format registry weight format name
 * @param activation activation format name, "none" for float inputs (default "int8")
 * @returns the kernel family
 *
 * @example
 * ```ts
 * import { kernelFor } from "@lowbit/pipeline/search";
 * if (kernelFor("int4") !== "s4" || kernelFor("int8") !== "s8" || kernelFor("mxfp4") !== "minifloat") throw new Error();
 * if (kernelFor("int8", "none") !== "f32" || kernelFor("int4", "fp8_e4m3fn") !== "f32") throw new Error();
 * ```
 */
export function kernelFor(format: string, activation = "int8"): LatencyKernel {
  // The mapping is data in core, beside the formats.
  return weightKernel(getFormat(format), activation === "none" ? "none" : getFormat(activation));
}

/**
 * The latency table's format key of a candidate: the weight format for int8
 * activations (as before activation formats were searched), `weight@activation` otherwise.
 *
 * @param candidate the candidate
 * @returns the key
 *
 * @example
 * ```ts
 * import { latencyKey, parseCandidate } from "@lowbit/pipeline/search";
 * if (latencyKey(parseCandidate("int4/channel")) !== "int4") throw new Error();
 * if (latencyKey(parseCandidate("int4/channel@none")) !== "int4@none") throw new Error();
 * ```
 */
export function latencyKey(candidate: Candidate): string {
  return candidate.activationFormat === "int8"
    ? candidate.spec.format
    : `${candidate.spec.format}@${candidate.activationFormat}`;
}

let intKernels: Promise<IntKernels> | undefined;

async function time(run: () => unknown | Promise<unknown>, minMs = 15): Promise<number> {
  for (let i = 0; i < 3; i++) await run();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < 5 || (performance.now() - start < minMs && samples.length < 500)) {
    const t = performance.now();
    await run();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

/**
 * Measures one layer's GEMM in a candidate's format on our kernels (median of repeated runs).
 *
 * @param layer the layer
 * @param candidate the candidate
 * @param rows output positions per sample (M; 1 for a Gemm on one sample, pixels for a Conv)
 * @returns milliseconds per sample
 *
 * @example
 * ```ts
 * import { measureLayerLatency, parseCandidate } from "@lowbit/pipeline/search";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [16, 32], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 16, in: 32 };
 * const ms = await measureLayerLatency(fc, parseCandidate("int8/channel"), 1);
 * if (!(ms > 0)) throw new Error();
 * ```
 */
export async function measureLayerLatency(
  layer: Layer,
  candidate: Candidate,
  rows: number,
): Promise<number> {
  const M = Math.max(1, Math.round(rows)), K = layer.in, N = layer.out;
  const kind = kernelFor(candidate.spec.format, candidate.activationFormat);
  if (kind === "s8" || kind === "s4") {
    const k = await (intKernels ??= loadIntKernels());
    const a = new Int8Array(M * K).map((_, i) => (i % 7) - 3);
    const w = new Int8Array(K * N).map((_, i) => (i % 5) - 2);
    if (kind === "s8") {
      const b = packS8(k, w, K, N);
      try {
        return await time(() => gemmS8(k, a, M, b));
      } finally {
        b.free();
      }
    }
    const b = packS4(k, w, K, N);
    try {
      return await time(() => gemmS4(k, a, M, b));
    } finally {
      b.free();
    }
  }
  const a = new Float32Array(M * K).map((_, i) => ((i % 7) - 3) / 4);
  if (kind === "minifloat") {
    const format = candidate.spec.format as MinifloatWeightFormat;
    const block = format === "nvfp4" ? 16 : format.startsWith("mx") ? 32 : 0;
    const w = packMinifloatB({
      format,
      k: K,
      n: N,
      codes: new Uint8Array(K * N).map((_, i) => i % 3),
      scales: block
        ? new Uint8Array(Math.ceil(K / block) * N).fill(format === "nvfp4" ? 0x38 : 127)
        : undefined,
    });
    return await time(() => gemmMinifloat(a, M, w));
  }
  const b = packF32B(new Float32Array(K * N).map((_, i) => (i % 5) / 8), K, N);
  return await time(() => gemmF32(a, M, b));
}

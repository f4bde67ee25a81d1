/**
 * `@lowbit/moe`: lowbit's mixture-of-experts plugin. Detects routers, experts and combines
 * (sparse and dense dispatch), calibrates with expert-balanced routing, weighs each expert's
 * GPTQ Hessian rows by the gate, keeps routers in float, gives thin experts dynamic per-token
 * activation scales, and measures routing agreement float vs quantized.
 *
 * ```sh
 * lowbit quantize moe.onnx --plugin moe --calib x.npy --preset w4a8 --gptq --out m.lowbit
 * lowbit --plugin moe moe inspect moe.onnx
 * lowbit --plugin moe moe eval moe.onnx m.lowbit --data x.npy
 * ```
 *
 * @module
 */

export { lastCoverage, plugin } from "./plugin.ts";
export * from "./detect.ts";
export * from "./balance.ts";
export * from "./coverage.ts";
export * from "./data.ts";
export * from "./agreement.ts";
export * from "./options.ts";
export * from "./commands.ts";

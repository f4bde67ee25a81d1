/**
 * An example third-party lowbit plugin, loaded with `lowbit quantize --plugin ./pow2_plugin.ts`.
 * It depends on nothing at run time (the type import is erased), and registers:
 *
 * - a number format `int3s`: the symmetric 3-bit integer grid −3..3 (no −4);
 * - a calibrator `absmax99`: a symmetric range at 99 % of the largest |x| seen (streaming, O(1));
 * - a quantizer `pow2`: values on a power-of-two grid, sign · scale · 2^−k for k = 0..2^(bits−1)−2,
 *   and 0 (a log2 quantizer); it has no QDQ ONNX form, so its models are `.lowbit` files;
 * - an option `--pow2-floor` (the smallest exponent kept) and a command `lowbit pow2-grid`.
 *
 * `docs/PLUGINS.md` walks through it; `apps/cli/commands/plugin_test.ts` uses it from a folder
 * outside the repository.
 *
 * @module
 */

import type {
  Calibrator,
  Codes,
  NumberFormat,
  Plugin,
  QParams,
  Quantizer,
  Range,
  Registry,
  Tensor,
} from "@lowbit/core";

// *** the format: int3s ***

const int3s: NumberFormat = {
  name: "int3s",
  bits: 3,
  family: "int",
  max: 3,
  min: -3,
  minNormal: 1,
  minSubnormal: 1,
  signed: true,
  encode(x: Float32Array): Codes {
    // two's complement in 3 bits; round half to even, saturate at ±3
    return Uint8Array.from(x, (v) => {
      const r = Math.round(v), q = r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
      return Math.max(-3, Math.min(3, q)) & 7;
    });
  },
  decode(c: Codes): Float32Array {
    return Float32Array.from(c, (v) => (v & 4 ? v - 8 : v));
  },
  values: () => Float32Array.of(-3, -2, -1, 0, 1, 2, 3),
};

// *** the calibrator: absmax99 ***

function absmax99(): Calibrator {
  let m = 0;
  return {
    name: "absmax99",
    observe(t: Tensor): void {
      for (const v of t.data) if (Math.abs(v) > m) m = Math.abs(v);
    },
    merge(other: Calibrator): void {
      m = Math.max(m, other.result().max[0]);
    },
    result(): Range {
      const a = Math.fround(0.99 * m);
      return { min: Float32Array.of(-a), max: Float32Array.of(a) };
    },
  };
}

// *** the quantizer: pow2 ***

/** Exponent levels of a format: 2^(bits-1) - 1 magnitudes (0 included as the last code). */
const levels = (bits: number): number => 2 ** (bits - 1) - 1;

function pow2(registry: Registry, floor: () => number): Quantizer {
  // Codes: bit 7 the sign, the low bits k + 1 for ±scale·2^-k, 0 for zero.
  const codeOf = (v: number, scale: number, n: number, kmax: number): number => {
    if (v === 0 || scale <= 0) return 0;
    const k = Math.max(0, Math.round(-Math.log2(Math.abs(v) / scale))); // 0 → ±scale, ...
    if (k >= n || k > kmax) return 0;
    return (v < 0 ? 0x80 : 0) | (k + 1);
  };
  const valueOf = (c: number, scale: number): number => {
    const mag = c & 0x7f;
    if (mag === 0) return 0;
    const v = Math.fround(scale * 2 ** -(mag - 1));
    return c & 0x80 ? -v : v;
  };
  const self: Quantizer = {
    name: "pow2",
    supports: (f) => f.family === "int" && f.bits <= 8,
    fit(input: Range | Tensor, opts): QParams {
      let amax = 0;
      if ("min" in input) amax = Math.max(-input.min[0], input.max[0]);
      else for (const v of input.data) amax = Math.max(amax, Math.abs(v));
      return {
        format: opts.format,
        granularity: { kind: "tensor" },
        mode: "symmetric",
        scale: Float32Array.of(amax || 1),
        zeroPoint: Int32Array.of(0),
        extra: { floor: [floor()] },
      };
    },
    quantize(t: Tensor, qp: QParams): Codes {
      const n = levels(registry.formats.get(qp.format).bits);
      const kmax = qp.extra?.floor?.[0] ?? floor();
      return Uint8Array.from(t.data, (v) => codeOf(v, qp.scale[0], n, kmax));
    },
    dequantize(c: Codes, qp: QParams, shape: readonly number[]): Tensor {
      return { shape: [...shape], data: Float32Array.from(c, (v) => valueOf(v, qp.scale[0])) };
    },
    fakeQuant(t: Tensor, qp: QParams): Tensor {
      return self.dequantize(self.quantize(t, qp), qp, t.shape);
    },
  };
  return self;
}

/** The plugin: what `--plugin ./pow2_plugin.ts` loads. */
export const plugin: Plugin = {
  name: "example-pow2",
  version: "1.0.0",
  register(r: Registry): void {
    let floorValue = 6;
    r.formats.register(int3s);
    r.calibrators.register({ name: "absmax99", create: absmax99 });
    r.quantizers.register(pow2(r, () => floorValue));
    r.options.register({
      name: "pow2-floor",
      type: "number",
      help: "pow2: the largest k of scale·2^-k kept (smaller values become 0)",
      default: 6,
    });
    // Options reach plugins through the stages' state; this one reads its own before fitting.
    r.stages.register({
      name: "pow2-options",
      before: "activations",
      run(state: { pluginOptions: Record<string, unknown> }): void {
        const f = state.pluginOptions["pow2-floor"];
        if (typeof f === "number") floorValue = f;
      },
    });
    r.commands.register({
      name: "pow2-grid",
      summary: "print the pow2 grid of a format",
      main(args: string[]): Promise<number> {
        const bits = r.formats.get(args[0] ?? "int8").bits;
        const grid = Array.from({ length: levels(bits) }, (_, k) => 2 ** -k);
        console.log(grid.join(" "));
        return Promise.resolve(0);
      },
    });
  },
};

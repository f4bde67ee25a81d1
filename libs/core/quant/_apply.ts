// Private: the element loops behind quantizeAffine / dequantizeAffine /
// fakeQuantize, usable with a format object that need not be registered.

import { LowbitError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { NumberFormat, QParams } from "../types.ts";
import { checkFinite, type Layout, layoutOf, rne } from "./_layout.ts";
import { isBlockFormat, isIntFormat, quantBounds } from "./_format.ts";

/** fakeQuantize with the format given (see `fakeQuantize` for the semantics). */
export function fakeQuantizeWith(
  fmt: NumberFormat,
  t: Tensor,
  qp: QParams,
  name?: string,
): Tensor {
  const L = checkParams(t.shape, t.data.length, qp, name);
  checkFinite(t.data, name);
  if (isIntFormat(fmt)) {
    return { shape: [...t.shape], data: intQuant(t.data, qp, L, fmt, true) };
  }
  const y = floatScale(t.data, qp, L, fmt);
  let v: Float32Array;
  if (isBlockFormat(fmt)) {
    const last = t.shape.length ? t.shape[t.shape.length - 1] : 1;
    if (last % fmt.blockSize !== 0) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `block format '${fmt.name}' needs the last axis to be a multiple of ${fmt.blockSize}, ` +
          `got shape [${t.shape}]`,
        name === undefined ? {} : { tensor: name },
      );
    }
    v = y.length ? fmt.decodeBlocks(fmt.encodeBlocks(y)) : new Float32Array(0);
  } else {
    v = fmt.decode(fmt.encode(y));
  }
  const out = new Float32Array(v.length);
  forEachScale(L, (i, k) => {
    out[i] = Math.fround(v[i] * qp.scale[k]);
  });
  return { shape: [...t.shape], data: out };
}

export function checkParams(
  shape: readonly number[],
  length: number,
  qp: QParams,
  name?: string,
): Layout {
  const subject = name === undefined ? {} : { tensor: name };
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== length) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `shape [${shape}] holds ${n} values, got ${length}`,
      subject,
    );
  }
  const L = layoutOf(shape, qp.granularity, name);
  if (qp.scale.length !== L.count || qp.zeroPoint.length !== L.count) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${qp.granularity.kind} granularity over shape [${shape}] needs ${L.count} scales and ` +
        `zero points, got ${qp.scale.length} and ${qp.zeroPoint.length}`,
      subject,
    );
  }
  for (let k = 0; k < L.count; k++) {
    const s = qp.scale[k];
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `scale ${k} is ${s}; scales must be finite and > 0`,
        subject,
      );
    }
  }
  return L;
}

export function forEachScale(L: Layout, f: (i: number, k: number) => void): void {
  let i = 0;
  for (let o = 0; o < L.outer; o++) {
    for (let d = 0; d < L.dim; d++) {
      const base = o * L.oStride + Math.floor(d / L.group) * L.dStride;
      for (let r = 0; r < L.inner; r++, i++) f(i, base + r * L.rStride);
    }
  }
}

/** torch semantics; `dequant` returns `(q - zp) * scale`, else the integer `q`. */
export function intQuant(
  x: Float32Array,
  qp: QParams,
  L: Layout,
  fmt: NumberFormat,
  dequant: boolean,
): Float32Array {
  const [qmin, qmax] = quantBounds(fmt, qp.quantMin, qp.quantMax);
  const inv = new Float64Array(qp.scale.length);
  for (let k = 0; k < inv.length; k++) inv[k] = Math.fround(1 / qp.scale[k]);
  const out = new Float32Array(x.length);
  forEachScale(L, (i, k) => {
    const z = qp.zeroPoint[k];
    let q = rne(Math.fround(x[i] * inv[k])) + z;
    q = q < qmin ? qmin : q > qmax ? qmax : q;
    out[i] = dequant ? Math.fround((q - z) * qp.scale[k]) : q;
  });
  return out;
}

/** `clamp(x / scale, format.min, format.max)` in float32. */
export function floatScale(
  x: Float32Array,
  qp: QParams,
  L: Layout,
  fmt: NumberFormat,
): Float32Array {
  const out = new Float32Array(x.length);
  const block = isBlockFormat(fmt);
  const lo = fmt.min, hi = fmt.max;
  forEachScale(L, (i, k) => {
    const y = Math.fround(x[i] / qp.scale[k]);
    out[i] = block ? y : y < lo ? lo : y > hi ? hi : y;
  });
  return out;
}

import assert from "node:assert/strict";
import { LowbitError } from "../errors.ts";
import type { BlockFormat } from "../types.ts";
import { builtinFormats } from "./builtin.ts";
import { scaledParams } from "./scaled.ts";
import type { MinifloatFormat } from "./minifloat.ts";
import { refEncode, refGrid, refSpec } from "./_reference.ts";

const formats = builtinFormats();
const block = (name: string): BlockFormat => formats.find((f) => f.name === name) as BlockFormat;
const below = (v: number): number => {
  const b = new Uint32Array(Float32Array.of(v).buffer);
  b[0] -= 1;
  return new Float32Array(b.buffer)[0];
};
const filled = (n: number, v: number, at: Record<number, number> = {}): Float32Array => {
  const x = new Float32Array(n).fill(v);
  for (const [i, w] of Object.entries(at)) x[+i] = w;
  return x;
};

Deno.test("mx encodeBlocks() uses scale floor(log2 amax) − emax when amax is a power of two", () => {
  const f = block("mxfp8_e4m3");
  const x = filled(32, 1, { 0: 256, 5: -3 });
  const enc = f.encodeBlocks(x);
  assert.deepEqual([...enc.scales], [127]); // 8 − 8 = 0 → 2^0
  assert.equal(enc.codes[0], 0x78); // 256 = 1.000 · 2^8
  assert.equal(enc.codes[1], 0x38);
  assert.equal(enc.codes[5], 0xc4); // −3 = −1.100 · 2^1
  assert.equal(enc.tensorScale, 1);
  assert.deepEqual(f.decodeBlocks(enc), x);

  const g = block("mxfp4");
  const y = filled(32, 0.25, { 7: 16 }); // 4 − 2 = 2 → X = 4; 16/4 = 4, 0.25/4 → 0.0625 → 0
  const e = g.encodeBlocks(y);
  assert.deepEqual([...e.scales], [129]);
  assert.equal(e.codes[7], 0b0110);
  assert.equal(e.codes[0], 0);
  assert.equal(g.decodeBlocks(e)[7], 16);
});

Deno.test("mx encodeBlocks() saturates elements when amax is just below a power of two", () => {
  const fp4 = block("mxfp4");
  const x = filled(32, 1, { 0: below(8) }); // floor(log2) = 2 → X = 1; 7.99 → saturates to 6
  const enc = fp4.encodeBlocks(x);
  assert.deepEqual([...enc.scales], [127]);
  assert.equal(enc.codes[0], 0b0111);
  assert.equal(fp4.decodeBlocks(enc)[0], 6);

  const e4m3 = block("mxfp8_e4m3").encodeBlocks(filled(32, 0, { 3: -below(512) }));
  assert.deepEqual([e4m3.scales[0], e4m3.codes[3]], [127, 0xfe]); // −448

  // E5M2 elements saturate too (no Inf inside MX): 65535.99 → 57344.
  const e5m2 = block("mxfp8_e5m2").encodeBlocks(filled(32, 0, { 0: below(65536) }));
  assert.deepEqual([e5m2.scales[0], e5m2.codes[0]], [127, 0x7b]);

  const int8 = block("mxint8");
  const q = int8.encodeBlocks(filled(32, 0.5, { 1: below(2), 2: -1 }));
  assert.deepEqual([q.scales[0], q.codes[0], q.codes[1], q.codes[2]], [127, 32, 127, 0xc0]);
  assert.equal(int8.decodeBlocks(q)[1], 127 / 64);
});

Deno.test("mx encodeBlocks() gives an all-zero block the smallest scale 2^-127 and ±0 codes", () => {
  const f = block("mxfp8_e4m3");
  const x = new Float32Array(64);
  x[40] = -0;
  x[33] = 1;
  const enc = f.encodeBlocks(x);
  assert.deepEqual([...enc.scales], [0, 119]); // block 2: 0 − 8 = −8
  assert.equal(enc.codes[0], 0);
  assert.equal(enc.codes[40], 0x80);
  const back = f.decodeBlocks(enc);
  assert.ok(back.slice(0, 32).every((v) => v === 0));
  assert.ok(Object.is(back[40], -0));
});

Deno.test("mx encodeBlocks() clamps the shared exponent to E8M0's range", () => {
  const f = block("mxfp4");
  const tiny = f.encodeBlocks(filled(32, 2 ** -140));
  assert.equal(tiny.scales[0], 0); // −142 → −127
  const big = f.encodeBlocks(filled(32, 1.5 * 2 ** 127));
  assert.equal(big.scales[0], 252); // 127 − 2 = 125
  assert.equal(f.decodeBlocks(big)[0], 1.5 * 2 ** 127);
});

Deno.test("mx encodeBlocks() turns a block holding NaN or Inf into a NaN block (scale 0xFF)", () => {
  // amax 1 in the middle block: scale 127 + 0 − emax.
  const middle: Record<string, number> = {
    mxfp4: 125,
    mxfp8_e4m3: 119,
    mxfp8_e5m2: 112,
    mxint8: 127,
    mxfp6_e2m3: 125,
  };
  for (const [name, mid] of Object.entries(middle)) {
    const f = block(name);
    const x = filled(96, 1, { 5: NaN, 70: -Infinity });
    const enc = f.encodeBlocks(x);
    assert.deepEqual([...enc.scales], [0xff, mid, 0xff]);
    const back = f.decodeBlocks(enc);
    assert.ok(back.slice(0, 32).every(Number.isNaN), name);
    assert.ok(back.slice(64).every(Number.isNaN), name);
    assert.ok(back.slice(32, 64).every((v) => v === 1), name);
  }
});

Deno.test("nvfp4 uses tensor scale amax / (6 · 448) and E4M3 block scales", () => {
  const f = block("nvfp4");
  const x = filled(32, 0.5, { 3: 2688, 16: 6, 17: -3, 18: 1.5 });
  for (let i = 19; i < 32; i++) x[i] = 0;
  const enc = f.encodeBlocks(x);
  assert.equal(enc.tensorScale, 1); // 2688 / 2688
  assert.deepEqual([...enc.scales], [0x7e, 0x38]); // 448 and 1.0
  assert.equal(enc.codes[3], 0b0111);
  assert.deepEqual([...enc.codes.slice(16, 19)], [0b0111, 0b1101, 0b0011]);
  const back = f.decodeBlocks(enc);
  assert.equal(back[3], 2688);
  assert.deepEqual([...back.slice(16, 19)], [6, -3, 1.5]);
  assert.equal(back[0], 0); // 0.5 / 448 rounds to 0 in E2M1

  const y = filled(16, 0.25, { 0: 1 });
  const e2 = f.encodeBlocks(y);
  assert.equal(e2.tensorScale, Math.fround(1 / 2688));
  assert.equal(f.element.decode(e2.codes)[0], 6);
  const yb = f.decodeBlocks(e2);
  assert.ok(Math.abs(yb[0] - 1) < 1e-6 && Math.abs(yb[1] - 0.25) < 0.05, `${yb[0]} ${yb[1]}`);
});

Deno.test("nvfp4 handles all-zero tensors and NaN blocks", () => {
  const f = block("nvfp4");
  const z = f.encodeBlocks(new Float32Array(32));
  assert.equal(z.tensorScale, 1);
  assert.deepEqual([...z.scales], [0, 0]);
  assert.ok(f.decodeBlocks(z).every((v) => v === 0));
  const n = f.encodeBlocks(filled(32, 3, { 20: NaN }));
  assert.equal(n.tensorScale, Math.fround(3 / 2688)); // amax over finite values
  assert.deepEqual([...n.scales], [0x7e, 0x7f]);
  const back = f.decodeBlocks(n);
  assert.ok(Math.abs(back[0] - 3) < 1e-6);
  assert.ok(back.slice(16).every(Number.isNaN));
});

Deno.test("block encode() attaches scales so decode(encode(x)) fake-quantizes", () => {
  for (const name of ["mxfp4", "mxfp6_e3m2", "mxint8", "nvfp4"]) {
    const f = block(name);
    const x = new Float32Array(64).map((_, i) => Math.sin(i * 0.7) * (i % 7));
    const codes = f.encode(x);
    assert.equal(codes.length, 64);
    assert.deepEqual(f.decode(codes), f.decodeBlocks(f.encodeBlocks(x)));
    assert.equal((codes as unknown as { scales: Uint8Array }).scales.length, 64 / f.blockSize);
    assert.equal(scaledParams(codes).tensorScale, f.encodeBlocks(x).tensorScale);
    const err = f.decode(codes).reduce((s, v, i) => Math.max(s, Math.abs(v - x[i])), 0);
    assert.ok(err < 1.5, `${name}: ${err}`);
    assert.throws(() => f.decode(codes.slice()), LowbitError);
  }
});

Deno.test("block formats reject lengths that are not a multiple of the block", () => {
  for (const name of ["mxfp4", "nvfp4"]) {
    const f = block(name);
    assert.throws(
      () => f.encodeBlocks(new Float32Array(f.blockSize + 1)),
      (e: unknown) =>
        e instanceof LowbitError && e.code === "SHAPE_MISMATCH" &&
        e.message.includes(`multiple of ${f.blockSize}`),
    );
    assert.throws(() => f.encode(new Float32Array(3)), LowbitError);
    assert.throws(
      () =>
        f.decodeBlocks({
          codes: new Uint8Array(f.blockSize),
          scales: new Uint8Array(2),
          tensorScale: 1,
        }),
      /scale codes/,
    );
  }
});

Deno.test("block formats map empty input to empty output", () => {
  for (const f of formats.filter((g) => g.family === "block") as BlockFormat[]) {
    const enc = f.encodeBlocks(new Float32Array(0));
    assert.equal(enc.codes.length + enc.scales.length, 0, f.name);
    assert.equal(f.decodeBlocks(enc).length, 0);
    assert.equal(f.decode(f.encode(new Float32Array(0))).length, 0);
  }
});

Deno.test("block formats describe themselves: block size, element and scale formats", () => {
  const want: Record<string, [number, string, string, number]> = {
    mxfp8_e4m3: [32, "fp8_e4m3fn", "e8m0", 8.25],
    mxfp8_e5m2: [32, "fp8_e5m2", "e8m0", 8.25],
    mxfp6_e3m2: [32, "fp6_e3m2fn", "e8m0", 6.25],
    mxfp6_e2m3: [32, "fp6_e2m3fn", "e8m0", 6.25],
    mxfp4: [32, "fp4_e2m1fn", "e8m0", 4.25],
    mxint8: [32, "int8_f6", "e8m0", 8.25],
    nvfp4: [16, "fp4_e2m1fn", "fp8_e4m3fn", 4.5],
  };
  for (const [name, [bs, el, sc, bpv]] of Object.entries(want)) {
    const f = block(name);
    assert.deepEqual([f.blockSize, f.element.name, f.scaleFormat.name, f.bitsPerValue], [
      bs,
      el,
      sc,
      bpv,
    ]);
  }
});

Deno.test("mx encodeBlocks() of 1e6 values takes well under a second", () => {
  const f = block("mxfp4");
  const x = new Float32Array(1 << 20).map((_, i) => Math.sin(i));
  const t0 = performance.now();
  f.encodeBlocks(x);
  assert.ok(performance.now() - t0 < 1000);
});

// *** MX and NVFP4 against a reference built on the independent minifloat reference ***

/** Blocks of mixed magnitudes, with amax at, just below and just above powers of two. */
function randomBlocks(nBlocks: number, blockSize: number, seed: number): Float32Array {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const x = new Float32Array(nBlocks * blockSize);
  for (let b = 0; b < nBlocks; b++) {
    const e = Math.floor(rnd() * 60) - 30;
    for (let j = 0; j < blockSize; j++) {
      x[b * blockSize + j] = (rnd() < 0.5 ? -1 : 1) * rnd() * 2 ** (e - Math.floor(rnd() * 12));
    }
    const kind = b % 4;
    const at = b * blockSize + Math.floor(rnd() * blockSize);
    if (kind === 1) x[at] = 2 ** e;
    if (kind === 2) x[at] = below(2 ** e);
    if (kind === 3) x[at] = -(2 ** e) * (1 + 2 ** -23);
  }
  return x;
}

/** Round half to even via floor (the production code uses Math.round). */
function halfEven(v: number): number {
  const f = Math.floor(v), d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

function refMx(f: BlockFormat, x: Float32Array): { codes: number[]; scales: number[] } {
  const el = f.element;
  const isInt = el.family === "int";
  const emax = Math.floor(Math.log2(el.max));
  const spec = isInt ? undefined : refSpec(el as MinifloatFormat);
  const grid = spec ? refGrid(spec) : [];
  const codes: number[] = [], scales: number[] = [];
  for (let b = 0; b < x.length / f.blockSize; b++) {
    const blk = x.subarray(b * f.blockSize, (b + 1) * f.blockSize);
    const amax = blk.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    let e = Math.floor(Math.log2(amax));
    if (2 ** e > amax) e -= 1; // guard Math.log2 rounding
    if (2 ** (e + 1) <= amax) e += 1;
    const sh = Math.max(-127, Math.min(127, amax === 0 ? -127 : e - emax));
    scales.push(sh + 127);
    for (const v of blk) {
      const y = Math.fround(v / 2 ** sh);
      if (isInt) {
        const q = Math.max(-127, Math.min(127, halfEven(y * 64)));
        codes.push(q & 0xff);
      } else codes.push(refEncode(spec!, grid, y, false));
    }
  }
  return { codes, scales };
}

Deno.test("mx encodeBlocks() matches a reference on random blocks, bit for bit", () => {
  for (const name of ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8"]) {
    const f = block(name);
    const x = randomBlocks(400, 32, name.length * 7919);
    const enc = f.encodeBlocks(x);
    const ref = refMx(f, x);
    assert.deepEqual([...enc.scales], ref.scales, name);
    for (let i = 0; i < x.length; i++) {
      if (enc.codes[i] !== ref.codes[i]) {
        assert.fail(
          `${name}: value ${x[i]} at ${i}: code ${enc.codes[i]}, reference ${ref.codes[i]}`,
        );
      }
    }
  }
});

Deno.test("nvfp4 encodeBlocks() matches a reference on random blocks, bit for bit", () => {
  const f = block("nvfp4");
  const e4m3 = refSpec(f.scaleFormat as MinifloatFormat),
    e2m1 = refSpec(f.element as MinifloatFormat);
  const g4m3 = refGrid(e4m3), g2m1 = refGrid(e2m1);
  const x = randomBlocks(600, 16, 4242);
  const enc = f.encodeBlocks(x);
  const amax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const ts = Math.fround(amax / 2688);
  assert.equal(enc.tensorScale, ts);
  const dec = f.scaleFormat.decode(Uint8Array.from({ length: 256 }, (_, i) => i));
  for (let b = 0; b < 600; b++) {
    const blk = x.subarray(b * 16, (b + 1) * 16);
    const bmax = blk.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const sc = refEncode(e4m3, g4m3, Math.fround(Math.fround(bmax / 6) / ts), false);
    assert.equal(enc.scales[b], sc, `block ${b}`);
    const denom = Math.fround(dec[sc] * ts);
    for (let j = 0; j < 16; j++) {
      const want = dec[sc] === 0 ? 0 : refEncode(e2m1, g2m1, Math.fround(blk[j] / denom), false);
      assert.equal(enc.codes[b * 16 + j], want, `block ${b} value ${blk[j]}`);
    }
  }
});

Deno.test("mx roundBlocks() gives decodeBlocks(encodeBlocks(x)) bit for bit, specials included", () => {
  // Random blocks, plus blocks of exact ties on each grid, ±0, float32 subnormals (the shared
  // exponent clamped at 2^-127), values near float32's max, and NaN / Inf blocks.
  const special = (bs: number): Float32Array => {
    const out: number[] = [];
    const push = (f: (j: number) => number) => {
      for (let j = 0; j < bs; j++) out.push(f(j));
    };
    push((j) => (j % 2 ? -0 : 0));
    push((j) => (j - 16) * 0.25 + 0.125); // halfway points of fine grids
    push((j) => (j % 7 - 3) * 2 ** -140); // float32 subnormals
    push((j) => (j % 5 - 2) * 1.5e38);
    push((j) => (j === 3 ? NaN : j));
    push((j) => (j === 0 ? -Infinity : 1 / (j + 1)));
    push((j) => 6 * (1 + j) / bs + (j % 3) * 0.25); // ties of e2m1 above 1
    return Float32Array.from(out);
  };
  for (const name of ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4"]) {
    const f = block(name);
    assert.ok(f.roundBlocks, name);
    const r = randomBlocks(400, 32, name.length * 104729);
    const s = special(32);
    const x = new Float32Array(r.length + s.length);
    x.set(r), x.set(s, r.length);
    const want = f.decodeBlocks(f.encodeBlocks(x));
    const got = f.roundBlocks(x);
    for (let i = 0; i < x.length; i++) {
      if (!Object.is(got[i], want[i])) {
        assert.fail(`${name}: value ${x[i]} at ${i}: ${got[i]}, through the codes ${want[i]}`);
      }
    }
  }
  // The integer-element MX format has no fused path (fake quantization goes through codes).
  assert.equal(block("mxint8").roundBlocks, undefined);
});

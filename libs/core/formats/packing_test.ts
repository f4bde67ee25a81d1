import assert from "node:assert/strict";
import { LowbitError } from "../errors.ts";
import {
  pack4,
  pack6,
  packBits,
  packTrits,
  unpack4,
  unpack6,
  unpackBits,
  unpackTrits,
} from "./packing.ts";
import { getFormat } from "../default_registry.ts";

function randomCodes(n: number, bits: number, seed: number): Uint8Array | Uint16Array {
  const out = bits <= 8 ? new Uint8Array(n) : new Uint16Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = (s >>> 8) % 2 ** bits;
  }
  return out;
}

Deno.test("packBits() and unpackBits() round-trip every width and odd lengths", () => {
  for (let bits = 1; bits <= 16; bits++) {
    for (const n of [0, 1, 3, 7, 8, 33, 1001]) {
      const c = randomCodes(n, bits, bits * 100 + n);
      const packed = packBits(c, bits);
      assert.equal(packed.length, Math.ceil((n * bits) / 8));
      assert.deepEqual([...unpackBits(packed, bits, n)], [...c], `bits ${bits}, n ${n}`);
    }
  }
});

Deno.test("pack4() puts the first code in the low nibble", () => {
  assert.deepEqual([...pack4(new Uint8Array([0xa, 0xb, 0xc]))], [0xba, 0x0c]);
  assert.deepEqual([...unpack4(new Uint8Array([0xba, 0x0c]), 3)], [0xa, 0xb, 0xc]);
});

Deno.test("pack6() stores four codes in three bytes", () => {
  const c = new Uint8Array([0b000001, 0b000010, 0b000011, 0b111111]);
  const p = pack6(c);
  assert.equal(p.length, 3);
  // bits LSB-first: 000001 | 000010 | 000011 | 111111
  assert.deepEqual([...p], [0b10_000001, 0b0011_0000, 0b111111_00]);
  assert.deepEqual(unpack6(p, 4), c);
});

Deno.test("packTrits() stores five trits per byte and round-trips format codes", () => {
  const f = getFormat("ternary");
  const x = new Float32Array(103).map((_, i) => Math.sin(i * 2.1));
  const codes = f.encode(x) as Uint8Array;
  const packed = packTrits(codes);
  assert.equal(packed.length, 21);
  assert.ok(packed.every((b) => b < 243));
  assert.deepEqual([...unpackTrits(packed, 103)], [...codes]);
});

Deno.test("fp4 and fp6 codes round-trip through packing", () => {
  for (
    const [name, pack, unpack] of [
      ["fp4_e2m1fn", pack4, unpack4],
      ["fp6_e3m2fn", pack6, unpack6],
    ] as const
  ) {
    const f = getFormat(name);
    const x = new Float32Array(77).map((_, i) => Math.cos(i) * 5);
    const c = f.encode(x);
    assert.deepEqual(f.decode(unpack(pack(c), 77)), f.decode(c));
  }
});

Deno.test("packing rejects codes that do not fit and short byte arrays", () => {
  assert.throws(() => packBits(new Uint8Array([16]), 4), /does not fit/);
  assert.throws(() => packTrits(new Uint8Array([2])), /not a trit/);
  assert.throws(() => unpackBits(new Uint8Array(1), 4, 3), LowbitError);
  assert.throws(() => unpackTrits(new Uint8Array([243]), 1), /not 5 trits/);
  assert.throws(() => packBits(new Uint8Array(1), 0), /1\.\.16/);
  assert.equal(packTrits(new Uint8Array(0)).length, 0);
});

// Test-only: an independent reference minifloat encoder, shared by
// minifloat_test.ts and block_test.ts. Production code never imports it.

import type { MinifloatFormat } from "./minifloat.ts";

// *** an independent reference ***
//
// The production encoder rounds float32 bits with integer tricks. The reference
// below never looks at bits: it enumerates every code, computes its value from
// the definition with plain float64 arithmetic, sorts the finite values, finds
// the two grid neighbours of the input by comparison, and picks the nearer
// one; a tie goes to the neighbour whose significand integer (implicit bit
// included) is even, or, when both are odd (zero mantissa bits), to the larger
// magnitude. Overflow, NaN and the unsigned / no-zero rules are separate cases.

export interface RefCode {
  value: number;
  code: number;
  /** significand integer: (1·2^M + frac) for normals, frac for subnormals */
  sig: number;
}

export interface RefSpec {
  E: number;
  M: number;
  bias: number;
  special: "ieee" | "fn" | "finite";
  signed: boolean;
  subnormals: boolean;
}

export function refSpec(f: MinifloatFormat): RefSpec {
  return {
    E: f.exponentBits,
    M: f.mantissaBits,
    bias: f.bias,
    special: f.special,
    signed: f.signed,
    subnormals: f.subnormals,
  };
}

/** Non-negative finite grid points with their (positive) codes, ascending. */
export function refGrid(s: RefSpec): RefCode[] {
  const out: RefCode[] = [];
  for (let field = 0; field < 2 ** s.E; field++) {
    for (let frac = 0; frac < 2 ** s.M; frac++) {
      const code = field * 2 ** s.M + frac;
      if (s.special === "ieee" && field === 2 ** s.E - 1) continue;
      if (s.special === "fn" && field === 2 ** s.E - 1 && frac === 2 ** s.M - 1) continue;
      let value: number, sig: number;
      if (field === 0 && s.subnormals) {
        value = frac * 2 ** (1 - s.bias - s.M);
        sig = frac;
      } else {
        value = (2 ** s.M + frac) * 2 ** (field - s.bias - s.M);
        sig = 2 ** s.M + frac;
      }
      out.push({ value, code, sig });
    }
  }
  return out.sort((a, b) => a.value - b.value);
}

export function refEncode(s: RefSpec, grid: RefCode[], v: number, overflowToInf: boolean): number {
  const signBit = s.signed ? 2 ** (s.E + s.M) : 0;
  const infCode = (2 ** s.E - 1) * 2 ** s.M;
  const nanCode = s.special === "ieee"
    ? infCode + 2 ** (s.M - 1)
    : s.special === "fn"
    ? 2 ** (s.E + s.M) - 1
    : -1;
  const neg = v < 0 || Object.is(v, -0);
  if (Number.isNaN(v)) throw new Error("NaN handled by the caller");
  if (!s.signed && neg && v !== 0) return nanCode;
  const a = Math.abs(v);
  const withSign = (c: number) => (neg && s.signed ? signBit + c : c);
  const top = grid[grid.length - 1];
  if (a > top.value) {
    if (s.special !== "ieee" || !overflowToInf) return withSign(top.code);
    // the next binade's first value, where Inf sits; a tie goes to it (max is odd).
    const next = 2 ** (Math.floor(Math.log2(top.value)) + 1);
    return withSign(a >= (top.value + next) / 2 ? infCode : top.code);
  }
  let lo0 = 0, hi = grid.length - 1; // lower bound: first grid value ≥ a
  while (lo0 < hi) {
    const mid = (lo0 + hi) >> 1;
    if (grid[mid].value >= a) hi = mid;
    else lo0 = mid + 1;
  }
  if (grid[hi].value === a) return withSign(grid[hi].code);
  if (hi === 0) return withSign(grid[0].code); // below the smallest (no zero): nearest is it
  const lo = grid[hi - 1], up = grid[hi];
  const dl = a - lo.value, du = up.value - a;
  let pick: RefCode;
  if (dl < du) pick = lo;
  else if (du < dl) pick = up;
  else if (lo.sig % 2 === 0 && up.sig % 2 !== 0) pick = lo;
  else if (up.sig % 2 === 0 && lo.sig % 2 !== 0) pick = up;
  else pick = up; // both odd (M = 0): larger magnitude
  return withSign(pick.code);
}

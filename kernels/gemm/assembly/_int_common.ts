// Shared helpers for the integer kernels (AssemblyScript; not built on its own because its name
// starts with `_`). Everything here is @inline: no static data, no allocation, no imports.

/** [Σx, Σy, Σz, Σw] of four i32x4 vectors (integer: the order does not matter). */
// @ts-ignore: decorator
@inline export function reduce4(x: v128, y: v128, z: v128, w: v128): v128 {
  const xy = i32x4.add(
    v128.shuffle<i32>(x, y, 0, 1, 4, 5),
    v128.shuffle<i32>(x, y, 2, 3, 6, 7),
  );
  const zw = i32x4.add(
    v128.shuffle<i32>(z, w, 0, 1, 4, 5),
    v128.shuffle<i32>(z, w, 2, 3, 6, 7),
  );
  return i32x4.add(
    v128.shuffle<i32>(xy, zw, 0, 2, 4, 6),
    v128.shuffle<i32>(xy, zw, 1, 3, 5, 7),
  );
}

/** [Σx, Σy] in lanes 0 and 1 (lanes 2, 3 undefined). */
// @ts-ignore: decorator
@inline export function reduce2(x: v128, y: v128): v128 {
  const xy = i32x4.add(
    v128.shuffle<i32>(x, y, 0, 1, 4, 5),
    v128.shuffle<i32>(x, y, 2, 3, 6, 7),
  );
  return i32x4.add(v128.shuffle<i32>(xy, xy, 0, 2, 0, 2), v128.shuffle<i32>(xy, xy, 1, 3, 1, 3));
}

/** Stores `ncols` (1 or 2) i32 lanes of `v` at `p`: lanes 0, 1 or (with `hi`) lanes 2, 3. */
// @ts-ignore: decorator
@inline export function store2(p: usize, v: v128, hi: bool, ncols: i32): void {
  if (ncols == 2) {
    if (hi) v128.store_lane<i64>(p, v, 1);
    else v128.store_lane<i64>(p, v, 0);
  } else {
    if (hi) v128.store_lane<i32>(p, v, 2);
    else v128.store_lane<i32>(p, v, 0);
  }
}

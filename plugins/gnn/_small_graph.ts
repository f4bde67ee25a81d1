// Test helper: the small graph derived by hand in degrees_test.ts, as an edge index and as a
// dense adjacency A[dst, src].
//
//   edges src → dst: 0→1, 2→1, 3→1, 4→1, 1→0, 0→2, 1→2, 3→4
//   in-degrees:      node 0: 1, node 1: 4, node 2: 2, node 3: 0, node 4: 1

/** Sources and destinations of the edges. */
export const SRC = [0, 2, 3, 4, 1, 0, 1, 3], DST = [1, 1, 1, 1, 0, 2, 2, 4];
/** The edge index [2, 8]: row 0 sources, row 1 destinations. */
export const EDGES = {
  dtype: "int64",
  shape: [2, 8],
  data: BigInt64Array.from([...SRC, ...DST], BigInt),
};
/** The dense adjacency, A[dst, src] = 1. */
export const ADJ = { dtype: "float32", shape: [5, 5], data: new Float32Array(25) };
SRC.forEach((s, e) => (ADJ.data[DST[e] * 5 + s] = 1));

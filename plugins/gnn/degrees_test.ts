// Degrees, bins and protection on a small graph derived by hand:
//
//   edges src → dst: 0→1, 2→1, 3→1, 4→1, 1→0, 0→2, 1→2, 3→4
//   in-degrees:      node 0: 1, node 1: 4, node 2: 2, node 3: 0, node 4: 1
import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { checkGraphInputs, degreeBin, nodeDegrees, protectedNodes } from "./mod.ts";
import { ADJ, DST, EDGES } from "./_small_graph.ts";
import { npy } from "./_fixtures.ts";

const edgesSrc = { input: "edge_index", kind: "edges" as const, row: 1 };
const adjSrc = { input: "adj", kind: "adjacency" as const, row: -1 };

Deno.test("in-degrees from the edge index and from the adjacency agree with the hand count", () => {
  assert.deepEqual([...nodeDegrees(EDGES, edgesSrc, 5)], [1, 4, 2, 0, 1]);
  assert.deepEqual([...nodeDegrees(ADJ, adjSrc, 5)], [1, 4, 2, 0, 1]);
  // the other row counts out-degrees
  assert.deepEqual([...nodeDegrees(EDGES, { ...edgesSrc, row: 0 }, 5)], [2, 2, 1, 2, 1]);
  // a 1-D destination input
  const dst = { dtype: "int64", shape: [8], data: BigInt64Array.from(DST, BigInt) };
  assert.deepEqual([...nodeDegrees(dst, { ...edgesSrc, row: -1 }, 5)], [1, 4, 2, 0, 1]);
});

Deno.test("a normalised adjacency with self-loops gives the edge index's in-degrees", () => {
  // Â = D^-½ (A + I) D^-½ of the hand graph, D = in-degree + 1: the diagonal 1 / (d_i + 1) is
  // nonzero on every row, the self-loop is not a neighbour
  const d = [1, 4, 2, 0, 1];
  const norm = { ...ADJ, data: new Float32Array(25) };
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 5; j++) {
      const a = i === j ? 1 : ADJ.data[i * 5 + j];
      norm.data[i * 5 + j] = a / Math.sqrt((d[i] + 1) * (d[j] + 1));
    }
  }
  assert.deepEqual([...nodeDegrees(norm, adjSrc, 5)], d);
  assert.deepEqual([...nodeDegrees(norm, adjSrc, 5)], [...nodeDegrees(EDGES, edgesSrc, 5)]);
});

Deno.test("the fixture's Â (adj_norm.npy), A (adj.npy) and edge index give the same degrees", async () => {
  const [norm, adj, ei] = await Promise.all(["adj_norm.npy", "adj.npy", "edge_index.npy"].map(npy));
  const want = nodeDegrees(ei, edgesSrc, 400);
  assert.deepEqual(nodeDegrees(norm, adjSrc, 400), want);
  assert.deepEqual(nodeDegrees(adj, adjSrc, 400), want);
  // PROVENANCE.md: min 1, max 387, 3984 edges
  assert.equal(want.reduce((a, b) => a + b, 0), 3984);
  assert.equal(Math.max(...want), 387);
});

Deno.test("bins are [0,2) [2,4) [4,∞) with three; protection takes the top fraction, ties in", () => {
  const d = Int32Array.of(1, 4, 2, 0, 1);
  assert.deepEqual([...d].map((v) => degreeBin(v, 3)), [0, 2, 1, 0, 0]);
  assert.deepEqual([...d].map((v) => degreeBin(v, 1)), [0, 0, 0, 0, 0]);
  assert.deepEqual([...protectedNodes(d, 0)], [0, 0, 0, 0, 0]);
  assert.deepEqual([...protectedNodes(d, 0.2)], [0, 1, 0, 0, 0]); // k = 1: degree 4
  assert.deepEqual([...protectedNodes(d, 0.4)], [0, 1, 1, 0, 0]); // k = 2: degree ≥ 2
  assert.deepEqual([...protectedNodes(d, 0.6)], [1, 1, 1, 0, 1]); // k = 3: degree ≥ 1, tie in
  assert.deepEqual([...protectedNodes(d, 1)], [1, 1, 1, 1, 1]);
});

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof LowbitError, String(e));
    return `${e.code} ${e.subject.tensor} ${e.message}`;
  }
  return "no error";
}

Deno.test("bad graph inputs: a non-square adjacency, an edge index out of range", () => {
  const rect = { dtype: "float32", shape: [5, 4], data: new Float32Array(20) };
  assert.match(code(() => nodeDegrees(rect, adjSrc, 5)), /^SHAPE_MISMATCH adj .*square.*\[5, 4\]/);
  assert.match(
    code(() => nodeDegrees(ADJ, adjSrc, 6)),
    /^SHAPE_MISMATCH adj tensor 'adj': the adjacency is 5 × 5 but the features have 6 nodes/,
  );
  const far = { ...EDGES, data: EDGES.data.map((v, i) => (i === 12 ? 5n : v)) };
  assert.match(
    code(() => nodeDegrees(far, edgesSrc, 5)),
    /^INVALID_ARGUMENT edge_index tensor 'edge_index': edge 4 has destination 5, outside the graph's 5 nodes/,
  );
  const neg = { ...EDGES, data: EDGES.data.map((v, i) => (i === 8 ? -1n : v)) };
  assert.match(code(() => nodeDegrees(neg, edgesSrc, 5)), /edge 0 has destination -1/);
  const flat = { ...EDGES, shape: [16] };
  assert.match(code(() => nodeDegrees(flat, edgesSrc, 5)), /must be \[2, edges\]/);
  // as the plugin checks whole-graph inputs: the node count from the features
  const x = { dtype: "float32", shape: [4, 3], data: new Float32Array(12) };
  const agg = {
    node: "s",
    style: "edges" as const,
    input: "x",
    output: "y",
    reduce: "sum" as const,
    degrees: edgesSrc,
  };
  assert.match(
    code(() => checkGraphInputs([agg], { x, edge_index: EDGES })),
    /outside the graph's 4/,
  );
  // a source (row 0) outside the graph: named too, before any Gather reads it
  const src = { ...EDGES, data: EDGES.data.map((v, i) => (i === 2 ? 7n : v)) };
  assert.match(
    code(() => checkGraphInputs([agg], { x: { ...x, shape: [5, 3] }, edge_index: src })),
    /^INVALID_ARGUMENT edge_index tensor 'edge_index': edge 2 has source 7 \(row 0\), outside the graph's 5 nodes/,
  );
  const dense = { ...agg, style: "dense" as const, degrees: adjSrc };
  assert.match(code(() => checkGraphInputs([dense], { x, adj: rect })), /must be square/);
  assert.equal(code(() => checkGraphInputs([dense], { x, adj: ADJ })), "no error");
});

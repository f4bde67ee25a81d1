// Test helpers: the gnn fixtures (fixtures/gnn, see its PROVENANCE.md) loaded once.
import { type Model, readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { fileURLToPath } from "node:url";

/** fixtures/gnn/ as a path ending in a slash. */
export const FIX = fileURLToPath(new URL("../../fixtures/gnn/", import.meta.url));

/** An .npy of the fixture folder. */
export const npy = async (f: string): Promise<TensorData> =>
  readNpy(await Deno.readFile(FIX + f), f);

/** A model of the fixture folder. */
export const model = (name: string): Promise<Model> => readOnnxFile(`${FIX}${name}.onnx`);

/** The exports: model name, graph input name, file of that input. */
export const EXPORTS: readonly [string, string, string][] = [
  ["gcn_dense", "adj", "adj_norm.npy"],
  ["gcn_edges", "edge_index", "edge_index.npy"],
  ["gin_dense", "adj", "adj.npy"],
  ["gin_edges", "edge_index", "edge_index.npy"],
  ["gcn2_dense", "adj", "adj_norm.npy"],
  ["gcn2_edges", "edge_index", "edge_index.npy"],
  ["gcn2_aggfirst_dense", "adj", "adj_norm.npy"],
  ["gcn2_aggfirst_edges", "edge_index", "edge_index.npy"],
];

/** The whole-graph inputs of an export. */
export async function graphInputs(name: string): Promise<Record<string, TensorData>> {
  const [, input, file] = EXPORTS.find((e) => e[0] === name)!;
  return { x: await npy("x.npy"), [input]: await npy(file) };
}

// How `readOnnx(bytes, { baseDir })` reads external data without onnx.ts touching a file
// system: onnx_file.ts (loaded with @lowbit/graph's mod.ts, never by @lowbit/graph/portable)
// registers a factory of folder-backed sources here; without it, `baseDir` alone is refused.

import type { ExternalDataSource } from "./onnx.ts";

/** A source over a folder's files, closed when the model is read. */
export type FolderSource = ExternalDataSource & { close(): void };

let factory: ((dir: string) => FolderSource) | undefined;

/**
 * Registers the folder-backed source factory (onnx_file.ts does, on load).
 *
 * @param f makes a source over a folder
 */
export function registerFolderSource(f: (dir: string) => FolderSource): void {
  factory = f;
}

/**
 * A source over `dir`, or undefined when no factory is registered.
 *
 * @param dir the model's folder
 * @returns the source (close it after reading)
 */
export function folderSource(dir: string): FolderSource | undefined {
  return factory?.(dir);
}

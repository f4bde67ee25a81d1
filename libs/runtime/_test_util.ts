// Private test helpers: bundles of @lowbit/runtime for other JavaScript hosts.

import assert from "node:assert/strict";

/**
 * `deno bundle`s @lowbit/runtime + @lowbit/kernels into `${dir}/lowbit.${ext}` and the pool's
 * worker into `${dir}/worker.${ext}` (for `platform` "browser": a web bundle; default: Deno's
 * default platform, which Node also runs).
 */
export async function bundleRuntime(
  dir: string,
  ext: "js" | "mjs",
  platform?: "browser",
): Promise<void> {
  const here = new URL(".", import.meta.url);
  const entry = `${dir}/entry.ts`;
  await Deno.writeTextFile(
    entry,
    `export * from "${new URL("mod.ts", here).href}";\n` +
      `export * from "${new URL("../../kernels/gemm/mod.ts", here).href}";\n`,
  );
  const config = new URL("../../deno.json", here).pathname;
  const worker = new URL("worker.ts", here).pathname;
  for (const [src, out] of [[entry, `lowbit.${ext}`], [worker, `worker.${ext}`]]) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        ...(platform ? ["--platform", platform] : []),
        "--config",
        config,
        "-o",
        `${dir}/${out}`,
        src,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(r.success, `deno bundle ${src}: ${new TextDecoder().decode(r.stderr)}`);
  }
}

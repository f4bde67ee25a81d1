/**
 * Headless Chromium for the browser tests (libs/runtime/browser_test.ts, the report's chart
 * tests in libs/pipeline/report/html_test.ts): where the browser is, and the flags both start it
 * with (no sandbox, GPU, network chatter or first-run UI, a throw-away profile).
 *
 * @example
 * ```ts
 * import { findChromium, headlessArgs } from "./chromium.ts";
 * const bin = findChromium();
 * if (bin !== undefined && !bin.startsWith("/usr/bin/")) throw new Error(bin);
 * const args = headlessArgs("/tmp/profile");
 * if (args[0] !== "--headless" || !args.includes("--user-data-dir=/tmp/profile")) throw new Error();
 * ```
 *
 * @module
 */

/**
 * Debian's chromium (or a Chrome at the usual path), or undefined when absent.
 *
 * @example
 * ```ts
 * import { findChromium } from "./chromium.ts";
 * const bin = findChromium();
 * if (bin !== undefined && !Deno.statSync(bin).isFile) throw new Error(bin);
 * ```
 */
export function findChromium(): string | undefined {
  for (const p of ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* next */ }
  }
  return undefined;
}

/**
 * The flags of a headless, quiet Chromium run with its profile in `profile` (put the page's
 * URL and any run-specific flags after them).
 *
 * @example
 * ```ts
 * import { headlessArgs } from "./chromium.ts";
 * const args = [...headlessArgs("/tmp/p"), "--dump-dom", "file:///tmp/a.html"];
 * if (args.at(-3) !== "--user-data-dir=/tmp/p") throw new Error(args.join(" "));
 * ```
 */
export function headlessArgs(profile: string): string[] {
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    `--user-data-dir=${profile}`,
  ];
}

/**
 * `lowbit serve`: serves a folder (by default `dist/`, which `npx deno task bundle` writes) on
 * 127.0.0.1 — the in-browser quantize page at `/quantize/`, the runtime bundle beside it. Local
 * only: it never listens on another interface, serves GET / HEAD of files inside the folder
 * only (no listing, nothing outside it) and stops on Ctrl-C.
 *
 * ```sh
 * npx deno task bundle && lowbit serve            # http://127.0.0.1:8765/quantize/
 * lowbit serve --port 0 --dir dist --isolate       # a free port; cross-origin isolated
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { LowbitError } from "@lowbit/core";
import type { Command } from "./commands/_command.ts";

const HELP = `usage: lowbit serve [--port N] [--dir DIR] [--isolate]

Serves DIR (default: dist, as \`npx deno task bundle\` writes it) on 127.0.0.1 only, until Ctrl-C.
Open http://127.0.0.1:PORT/quantize/ to quantize a model in the browser (nothing is uploaded:
the page runs the pipeline in a web worker).

  --port N     port (default 8765; 0 picks a free one)
  --dir DIR    the folder to serve (default dist)
  --isolate    send COOP / COEP headers (cross-origin isolation: SharedArrayBuffer, so that
               pages using the runtime with threads > 1 get a worker pool)
  --help       this text`;

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  json: "application/json",
  wasm: "application/wasm",
  css: "text/css; charset=utf-8",
  png: "image/png",
  svg: "image/svg+xml",
  txt: "text/plain; charset=utf-8",
};

/** What `lowbit serve` was asked for. */
export interface ServeArgs {
  /** Port (0: any free one). */
  port: number;
  /** Folder served. */
  dir: string;
  /** Send COOP / COEP. */
  isolate: boolean;
}

/**
 * Parses `lowbit serve`'s arguments (null for `--help`).
 *
 * @param args the arguments after `serve`
 * @returns the options, or null for `--help`
 * @throws {LowbitError} `INVALID_ARGUMENT` for unknown flags or a bad port
 *
 * @example
 * ```ts
 * import { parseServeArgs } from "./serve.ts";
 * const a = parseServeArgs(["--port", "0", "--dir", "out"]);
 * if (a === null || a.port !== 0 || a.dir !== "out" || a.isolate) throw new Error();
 * ```
 */
export function parseServeArgs(args: string[]): ServeArgs | null {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        port: { type: "string" },
        dir: { type: "string" },
        isolate: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new LowbitError("INVALID_ARGUMENT", `${(e as Error).message}\n\n${HELP}`);
  }
  if (values.help) return null;
  const port = Number(values.port ?? "8765");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `--port must be an integer in [0, 65535], got '${values.port}'`,
    );
  }
  return { port, dir: values.dir ?? "dist", isolate: values.isolate ?? false };
}

/**
 * The file a request path names inside `root` (an absolute folder path without a trailing
 * slash), or null when it would leave the folder or is malformed. `…/` means `…/index.html`.
 *
 * @param root the served folder
 * @param pathname the URL's path
 * @returns the file path, or null
 *
 * @example
 * ```ts
 * import { servedFile } from "./serve.ts";
 * if (servedFile("/srv", "/quantize/") !== "/srv/quantize/index.html") throw new Error();
 * if (servedFile("/srv", "/a/%2e%2e/%2e%2e/etc/passwd") !== null) throw new Error();
 * ```
 */
export function servedFile(root: string, pathname: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (!path.startsWith("/") || path.includes("\0") || path.includes("\\")) return null;
  const parts = path.split("/").slice(1);
  if (parts.some((p) => p === ".." || p === ".")) return null;
  if (path.endsWith("/")) parts[parts.length - 1] = "index.html";
  return `${root}/${parts.join("/")}`;
}

async function respond(root: string, req: Request, isolate: boolean): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  const url = new URL(req.url);
  let file = servedFile(root, url.pathname);
  if (file === null) return new Response("bad path\n", { status: 400 });
  let info = await Deno.stat(file).catch(() => null);
  if (info?.isDirectory) {
    // A folder without the trailing slash: redirect, so that relative URLs resolve inside it.
    return new Response(null, { status: 301, headers: { location: `${url.pathname}/` } });
  }
  if (info === null || !info.isFile) return new Response("not found\n", { status: 404 });
  // Symbolic links may not lead outside the folder.
  const real = await Deno.realPath(file);
  if (!real.startsWith(`${root}/`)) return new Response("not found\n", { status: 404 });
  file = real;
  info = await Deno.stat(file);
  const ext = file.slice(file.lastIndexOf(".") + 1).toLowerCase();
  const headers: Record<string, string> = {
    "content-type": TYPES[ext] ?? "application/octet-stream",
    "content-length": String(info.size),
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  };
  if (isolate) {
    headers["cross-origin-opener-policy"] = "same-origin";
    headers["cross-origin-embedder-policy"] = "require-corp";
  }
  if (req.method === "HEAD") return new Response(null, { headers });
  return new Response((await Deno.open(file)).readable, { headers });
}

/**
 * Runs `lowbit serve` until Ctrl-C (SIGINT / SIGTERM) or `signal` aborts.
 *
 * @param args the arguments after `serve`
 * @param signal stops the server (for callers other than the command line)
 * @param onListen told the address once listening (default: prints it)
 * @returns the exit code
 *
 * @example
 * ```ts
 * import { serveMain } from "./serve.ts";
 * const ac = new AbortController();
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/index.html`, "<p>hi</p>");
 * const done = serveMain(["--port", "0", "--dir", dir], ac.signal, async (url) => {
 *   const r = await fetch(url);
 *   if ((await r.text()) !== "<p>hi</p>") throw new Error();
 *   ac.abort();
 * });
 * if (await done !== 0) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function serveMain(
  args: string[],
  signal?: AbortSignal,
  onListen?: (url: string) => void | Promise<void>,
): Promise<number> {
  const a = parseServeArgs(args);
  if (a === null) {
    console.log(HELP);
    return 0;
  }
  let root: string;
  try {
    root = await Deno.realPath(a.dir);
    if (!(await Deno.stat(root)).isDirectory) throw new Error("not a folder");
  } catch {
    throw new LowbitError(
      "IO_ERROR",
      "is not a folder (build it with `npx deno task bundle`, or pass --dir)",
      { file: a.dir },
    );
  }
  const ac = new AbortController();
  const stop = () => ac.abort();
  signal?.addEventListener("abort", stop);
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  try {
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname: "127.0.0.1",
        port: a.port,
        signal: ac.signal,
        onListen: () => {},
      }, (req) => respond(root, req, a.isolate));
    } catch (e) {
      throw new LowbitError(
        "IO_ERROR",
        `cannot listen on 127.0.0.1:${a.port}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    const url = `http://127.0.0.1:${server.addr.port}/`;
    const hasPage = await Deno.stat(`${root}/quantize/index.html`).then(() => true, () => false);
    if (onListen) await onListen(url);
    else {
      console.log(`lowbit serve: ${root} on ${url} (local only; Ctrl-C stops)`);
      if (hasPage) console.log(`  the quantize page: ${url}quantize/`);
    }
    await server.finished;
    return 0;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, stop);
    signal?.removeEventListener("abort", stop);
  }
}

/** The `lowbit serve` command. */
export const serveCommand: Command = {
  summary: "serve dist/ (the in-browser quantize page, the runtime bundle) on 127.0.0.1",
  main: (args: string[]): Promise<number> => serveMain(args),
};

/**
 * Headless Chromium for the browser tests (libs/runtime/browser_test.ts,
 * libs/session/bundle_test.ts, apps/web/page_test.ts, the report's chart tests in
 * libs/pipeline/report/html_test.ts): where the browser is, the flags they start it with (no
 * sandbox, GPU, network chatter or first-run UI, a throw-away profile), a local server for a test
 * page that reports by POSTing to `/result` ({@link servePage}, {@link runPage}), and the
 * DevTools protocol to drive a page ({@link launchChromium}, {@link connectCdp}).
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

const TYPES: Record<string, string> = {
  html: "text/html",
  js: "text/javascript",
  mjs: "text/javascript",
  json: "application/json",
  wasm: "application/wasm",
  png: "image/png",
};

/** What {@link servePage} serves. */
export interface ServeOptions {
  /**
   * The body of a GET for a path (`/`, `/page.js`, …), or undefined for a 404. The content
   * type follows the extension (`/` is HTML).
   */
  files: (path: string) => BodyInit | undefined | Promise<BodyInit | undefined>;
  /** Send COOP / COEP headers, making the page cross-origin isolated (SharedArrayBuffer). */
  isolated?: boolean;
  /** Told every request (method and path), e.g. to check what a page fetches or sends. */
  onRequest?: (method: string, path: string) => void;
}

/** A local server for a test page; the page reports by POSTing JSON to `/result`. */
export interface PageServer {
  /** `http://127.0.0.1:<port>/`. */
  readonly url: string;
  /** The first JSON body POSTed to `/result`. */
  readonly result: Promise<unknown>;
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Serves a test page on 127.0.0.1 (a free port) until closed.
 *
 * @param opts the files, isolation
 * @returns the server
 *
 * @example
 * ```ts
 * import { servePage } from "./chromium.ts";
 * const s = servePage({ files: (p) => (p === "/" ? "<p>hi</p>" : undefined) });
 * const page = await (await fetch(s.url)).text();
 * const missing = await fetch(new URL("/x.js", s.url));
 * await missing.body?.cancel();
 * await fetch(new URL("/result", s.url), { method: "POST", body: '{"ok":1}' }).then((r) => r.text());
 * if (page !== "<p>hi</p>" || missing.status !== 404 || (await s.result as { ok: number }).ok !== 1) {
 *   throw new Error();
 * }
 * await s.close();
 * ```
 */
export function servePage(opts: ServeOptions): PageServer {
  const { promise: result, resolve } = Promise.withResolvers<unknown>();
  const ac = new AbortController();
  const isolation: Record<string, string> = opts.isolated
    ? {
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
    }
    : {};
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      opts.onRequest?.(req.method, path);
      if (req.method === "POST" && path === "/result") {
        resolve(JSON.parse(await req.text()));
        return new Response("ok");
      }
      const body = await opts.files(path);
      if (body === undefined) return new Response("not found", { status: 404 });
      const ext = path.endsWith("/") ? "html" : path.split(".").pop()!;
      const type = TYPES[ext] ?? "application/octet-stream";
      return new Response(body, { headers: { "content-type": type, ...isolation } });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    result,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

/** A headless Chromium started by {@link launchChromium}. */
export interface Browser {
  /** The DevTools port (with `devtools: true`). */
  readonly devtoolsPort?: number;
  /** Stops the browser and removes its profile. */
  close(): Promise<void>;
}

/**
 * Starts headless Chromium on a URL, with a throw-away profile.
 *
 * @param chromium the browser ({@link findChromium})
 * @param url the page
 * @param opts `devtools`: open the DevTools protocol on a free local port (see {@link Cdp});
 *   `args`: more flags
 * @returns the running browser
 *
 * @example
 * ```ts ignore
 * import { findChromium, launchChromium } from "./chromium.ts";
 * const b = await launchChromium(findChromium()!, "about:blank");
 * await b.close();
 * ```
 */
export async function launchChromium(
  chromium: string,
  url: string,
  opts: { devtools?: boolean; args?: string[] } = {},
): Promise<Browser> {
  const profile = await Deno.makeTempDir({ prefix: "lowbit-chromium-" });
  const child = new Deno.Command(chromium, {
    args: [
      ...headlessArgs(profile),
      ...(opts.devtools ? ["--remote-debugging-port=0", "--remote-allow-origins=*"] : []),
      ...(opts.args ?? []),
      url,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const close = async () => {
    try {
      child.kill();
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  };
  if (!opts.devtools) return { close };
  // Chromium writes the port it picked to <profile>/DevToolsActivePort.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await Deno.readTextFile(`${profile}/DevToolsActivePort`).catch(() => "");
    const port = Number(text.split("\n")[0]);
    if (text.includes("\n") && port > 0) return { devtoolsPort: port, close };
    if (Date.now() > deadline) {
      await close();
      throw new Error("Chromium did not open its DevTools port within 15 s");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Serves a page, opens it in headless Chromium and returns what it POSTs to `/result`.
 *
 * @param chromium the browser
 * @param opts what to serve, isolation, and how long to wait (ms) and what for (messages)
 * @returns the page's result
 *
 * @example
 * ```ts ignore
 * import { findChromium, runPage } from "./chromium.ts";
 * const r = await runPage(findChromium()!, {
 *   files: (p) => p === "/" ? `<script>fetch("/result", { method: "POST", body: "1" })</script>` : undefined,
 *   timeoutMs: 20_000, label: "demo",
 * });
 * ```
 */
export async function runPage<T>(
  chromium: string,
  opts: ServeOptions & { timeoutMs: number; label: string },
): Promise<T> {
  const server = servePage(opts);
  let browser: Browser | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    browser = await launchChromium(chromium, server.url);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`no result from Chromium within ${opts.timeoutMs} ms (${opts.label})`)),
        opts.timeoutMs,
      );
    });
    return await Promise.race([server.result as Promise<T>, timeout]);
  } finally {
    clearTimeout(timer);
    await browser?.close();
    await server.close();
  }
}

/** A DevTools-protocol connection to one page target of a {@link launchChromium} browser. */
export interface Cdp {
  /**
   * Sends a command and returns its result.
   * @param method e.g. `Runtime.evaluate`
   * @param params its parameters
   */
  send(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /**
   * Evaluates an expression in the page (promises awaited) and returns its value (JSON).
   * @param expression JavaScript
   */
  evaluate<T>(expression: string): Promise<T>;
  /** Closes the connection. */
  close(): void;
}

/**
 * Connects to the first page target of a browser started with `devtools: true`.
 *
 * @param port the browser's DevTools port
 * @returns the connection
 *
 * @example
 * ```ts ignore
 * import { connectCdp, findChromium, launchChromium } from "./chromium.ts";
 * const b = await launchChromium(findChromium()!, "about:blank", { devtools: true });
 * const cdp = await connectCdp(b.devtoolsPort!);
 * console.log(await cdp.evaluate("1 + 1"));
 * cdp.close();
 * await b.close();
 * ```
 */
export async function connectCdp(port: number): Promise<Cdp> {
  let target: { type: string; webSocketDebuggerUrl: string } | undefined;
  const deadline = Date.now() + 15_000;
  while (target === undefined) {
    const list = await fetch(`http://127.0.0.1:${port}/json/list`).then((r) => r.json()).catch(
      () => [],
    ) as { type: string; webSocketDebuggerUrl: string }[];
    target = list.find((t) => t.type === "page");
    if (target === undefined) {
      if (Date.now() > deadline) throw new Error("Chromium shows no page target");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("cannot connect to Chromium's DevTools"));
  });
  let next = 1;
  const pending = new Map<number, PromiseWithResolvers<Record<string, unknown>>>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    const p = m.id !== undefined ? pending.get(m.id) : undefined;
    if (p === undefined) return;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(`${m.error.message} (${m.error.code})`));
    else p.resolve(m.result);
  };
  ws.onclose = () => {
    for (const p of pending.values()) p.reject(new Error("DevTools connection closed"));
    pending.clear();
  };
  const send = (method: string, params: Record<string, unknown> = {}) => {
    const id = next++;
    const p = Promise.withResolvers<Record<string, unknown>>();
    pending.set(id, p);
    ws.send(JSON.stringify({ id, method, params }));
    return p.promise;
  };
  return {
    send,
    evaluate: async <T>(expression: string): Promise<T> => {
      const r = await send("Runtime.evaluate", {
        expression,
        awaitPromise: true,
        returnByValue: true,
      }) as { result: { value?: T }; exceptionDetails?: { text: string; exception?: unknown } };
      if (r.exceptionDetails) {
        throw new Error(
          `in the page: ${JSON.stringify(r.exceptionDetails.exception ?? r.exceptionDetails.text)}`,
        );
      }
      return r.result.value as T;
    },
    close: () => ws.close(),
  };
}

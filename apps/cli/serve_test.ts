import assert from "node:assert/strict";
import { parseServeArgs, servedFile } from "./serve.ts";

const MAIN = new URL("./main.ts", import.meta.url).pathname;

Deno.test("lowbit serve serves a folder on 127.0.0.1 (files only, nothing outside it) until SIGINT", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lowbit_serve_" });
  const outside = await Deno.makeTempDir({ prefix: "lowbit_serve_out_" });
  try {
    await Deno.mkdir(`${dir}/quantize`);
    await Deno.writeTextFile(`${dir}/quantize/index.html`, "<p>page</p>");
    await Deno.writeFile(`${dir}/k.wasm`, new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
    await Deno.writeTextFile(`${outside}/secret.txt`, "secret");
    await Deno.symlink(`${outside}/secret.txt`, `${dir}/link.txt`);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "serve", "--port", "0", "--dir", dir, "--isolate"],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!/quantize page: (\S+)\n/.test(out)) {
      const { value, done } = await reader.read();
      assert.ok(!done, `lowbit serve ended early: ${out}`);
      out += value;
    }
    const page = /quantize page: (\S+)\n/.exec(out)![1];
    const base = /on (http:\/\/127\.0\.0\.1:\d+\/) \(local only/.exec(out)?.[1];
    assert.ok(base, out);
    assert.equal(page, `${base}quantize/`);
    const get = async (path: string, init?: RequestInit) => {
      const r = await fetch(new URL(path, base), { redirect: "manual", ...init });
      return { status: r.status, headers: r.headers, text: await r.text() };
    };
    const index = await get("quantize/");
    assert.equal(index.status, 200);
    assert.equal(index.text, "<p>page</p>");
    assert.match(index.headers.get("content-type")!, /^text\/html/);
    assert.equal(index.headers.get("cross-origin-embedder-policy"), "require-corp");
    assert.equal(index.headers.get("cross-origin-opener-policy"), "same-origin");
    assert.equal((await get("quantize")).headers.get("location"), "/quantize/");
    const wasm = await get("k.wasm");
    assert.equal(wasm.headers.get("content-type"), "application/wasm");
    assert.equal(wasm.text.length, 8);
    assert.equal((await get("missing.js")).status, 404);
    assert.equal((await get("link.txt")).status, 404, "a link out of the folder");
    // URLs resolve "%2e%2e" segments before the server sees them (inside the folder: 404);
    // encoded slashes survive, and a ".." they make is refused.
    assert.equal((await get("/quantize/%2e%2e/%2e%2e/etc/passwd")).status, 404);
    assert.equal((await get("/quantize/..%2f..%2f..%2fetc%2fpasswd")).status, 400);
    assert.equal((await get("/a%5c..%5c..%5cetc")).status, 400);
    assert.equal((await get("k.wasm", { method: "POST", body: "x" })).status, 405);
    child.kill("SIGINT");
    const status = await child.status;
    assert.equal(status.code, 0);
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("lowbit serve refuses a missing folder and bad options with clear errors", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "serve", "--dir", "/no/such/dist", "--port", "0"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 2);
  assert.match(
    new TextDecoder().decode(r.stderr),
    /\/no\/such\/dist.*not a folder.*deno task bundle/,
  );
  assert.throws(() => parseServeArgs(["--port", "70000"]), /--port must be an integer/);
  assert.throws(() => parseServeArgs(["--host", "0.0.0.0"]), /host/);
  assert.equal(parseServeArgs(["--help"]), null);
  assert.deepEqual(parseServeArgs([]), { port: 8765, dir: "dist", isolate: false });
});

Deno.test("servedFile maps paths into the folder and refuses the rest", () => {
  assert.equal(servedFile("/srv", "/"), "/srv/index.html");
  assert.equal(servedFile("/srv", "/a%20b.js"), "/srv/a b.js");
  for (const bad of ["/../x", "/a/./b", "/%E0%A4%A", "/a%00b", "/a\\b"]) {
    assert.equal(servedFile("/srv", bad), null, bad);
  }
});

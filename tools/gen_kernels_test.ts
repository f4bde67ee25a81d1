import assert from "node:assert/strict";
import { expandTemplate, generateSources } from "./gen_kernels.ts";

Deno.test("expandTemplate substitutes variables and keeps //#if blocks only for their flag", () => {
  const t = "a {{X}} b\n//#if f\nonly f {{X}}\n//#endif\nend";
  assert.equal(expandTemplate("t", t, { vars: { X: "1" }, flags: [] }), "a 1 b\nend");
  assert.equal(expandTemplate("t", t, { vars: { X: "2" }, flags: ["f"] }), "a 2 b\nonly f 2\nend");
});

Deno.test("expandTemplate names the template and line of an unknown variable or bad marker", () => {
  const v = { vars: {}, flags: [] };
  assert.throws(
    () => expandTemplate("k.tmpl", "ok\n{{Y}}", v),
    /k\.tmpl:2: unknown template variable \{\{Y\}\}/,
  );
  assert.throws(() => expandTemplate("k.tmpl", "//#endif", v), /k\.tmpl:1: \/\/#endif without/);
  assert.throws(() => expandTemplate("k.tmpl", "//#if a\n//#if b", v), /k\.tmpl:2: nested/);
  assert.throws(() => expandTemplate("k.tmpl", "//#if a\nx", v), /never closed/);
});

Deno.test("generateSources: the committed float twins are their template's expansion and differ only by ISA", async () => {
  const gen = await generateSources();
  const names = [...gen.keys()].map((p) => p.split("/").pop()).sort();
  assert.deepEqual(names, ["float_gemm.ts", "float_gemm_relaxed.ts"]);
  for (const [p, text] of gen) assert.equal(Deno.readTextFileSync(p), text, p);
  const byName = (n: string) => [...gen.entries()].find(([p]) => p.endsWith("/" + n))![1];
  const plain = byName("float_gemm.ts"), relaxed = byName("float_gemm_relaxed.ts");
  // Same exported kernels, suffixed by ISA; the relaxed build adds only its madd probe.
  const exported = (t: string, isa: string) =>
    [...t.matchAll(/export function (\w+)/g)].map((m) => m[1].replace(isa, "ISA"));
  const relaxedNames = exported(relaxed, "__wasmrelaxedsimd").filter((n) => n !== "probe_madd");
  assert.deepEqual(relaxedNames, exported(plain, "__wasmsimd"));
  assert.ok(relaxed.includes("probe_madd") && !plain.includes("probe_madd"));
});

import assert from "node:assert/strict";
import {
  type CalibratorFactory,
  createRegistry,
  createTable,
  defaultRegistry,
  LowbitError,
  type Plugin,
  type Quantizer,
  registerBuiltins,
} from "@lowbit/core";

const isErr = (code: string, re: RegExp) => (e: unknown): boolean =>
  e instanceof LowbitError && e.code === code && re.test(e.message);

Deno.test("createRegistry() starts empty and registerBuiltins() fills every table", () => {
  const r = createRegistry();
  for (const t of [r.formats, r.quantizers, r.calibrators, r.metrics, r.strategies]) {
    assert.deepEqual(t.list(), []);
  }
  registerBuiltins(r);
  assert.equal(createRegistry().formats.has("int8"), false); // registries are independent
  assert.ok(r.formats.has("int8") && r.formats.has("fp8_e4m3fn") && r.formats.has("mxfp4"));
  assert.deepEqual(r.quantizers.list(), ["uniform", "block", "scaled"]);
  assert.deepEqual(r.calibrators.list(), ["minmax", "ema-minmax", "percentile", "mse", "kl"]);
});

Deno.test("Table.register() rejects a duplicate name", () => {
  const r = createRegistry();
  registerBuiltins(r);
  const dup: CalibratorFactory = { name: "kl", create: () => ({}) as never };
  assert.throws(
    () => r.calibrators.register(dup),
    isErr("DUPLICATE_NAME", /^calibrator 'kl' is already registered$/),
  );
  const t = createTable<{ name: string }>("thing");
  t.register({ name: "a" });
  assert.throws(() => t.register({ name: "a" }), isErr("DUPLICATE_NAME", /thing 'a'/));
});

Deno.test("Table.get() names the unknown entry and lists what is registered", () => {
  const r = createRegistry();
  registerBuiltins(r);
  assert.throws(
    () => r.quantizers.get("gptq"),
    isErr("UNKNOWN_NAME", /^unknown quantizer 'gptq'; registered: uniform, block, scaled$/),
  );
  assert.throws(
    () => r.calibrators.get("entropy"),
    isErr("UNKNOWN_NAME", /registered: minmax, ema-minmax, percentile, mse, kl$/),
  );
  assert.throws(
    () => createRegistry().metrics.get("no-such-metric"),
    isErr("UNKNOWN_NAME", /^unknown sensitivity metric 'no-such-metric'; registered: \(none\)$/),
  );
  assert.throws(
    () => r.strategies.get("no-such-strategy"),
    isErr("UNKNOWN_NAME", /^unknown search strategy 'no-such-strategy'; registered: /),
  );
  assert.throws(
    () => r.formats.get("nosuchformat"),
    isErr("UNKNOWN_NAME", /^unknown format 'nosuchformat'; registered: .*int8.*fp8_e4m3fn/),
  );
});

Deno.test("createRegistry() resolves parametric names through its fallback", () => {
  const r = createRegistry((name) =>
    name === "demo3" ? { ...defaultRegistry().formats.get("int4"), name } : undefined
  );
  assert.equal(r.formats.get("demo3").name, "demo3");
  assert.ok(r.formats.has("demo3")); // cached once resolved
  assert.throws(() => r.formats.get("demo4"), isErr("UNKNOWN_NAME", /registered: demo3/));
});

Deno.test("Registry.use() registers a plugin exactly like built-ins, once", () => {
  const r = createRegistry();
  registerBuiltins(r);
  const sym = r.quantizers.get("uniform");
  const plugin: Plugin = {
    name: "@example/log2",
    register(reg) {
      const q: Quantizer = { ...sym, name: "log2" };
      reg.quantizers.register(q);
      reg.metrics.register({ name: "example-zero", score: () => 0 });
      reg.strategies.register({
        name: "example-first",
        allocate: (layers, c) => Object.fromEntries(layers.map((l) => [l, c[l][0]])),
      });
    },
  };
  r.use(plugin);
  assert.deepEqual(r.plugins(), ["@example/log2"]);
  assert.deepEqual(r.quantizers.list(), ["uniform", "block", "scaled", "log2"]);
  assert.equal(r.metrics.get("example-zero").score(undefined, "fc", "int8"), 0);
  assert.throws(
    () => r.use(plugin),
    isErr("DUPLICATE_NAME", /^plugin '@example\/log2' is already registered$/),
  );
  // a plugin whose registration fails is not recorded as used
  const bad: Plugin = { name: "bad", register: (reg) => reg.quantizers.register(sym) };
  assert.throws(() => r.use(bad), isErr("DUPLICATE_NAME", /quantizer 'uniform'/));
  assert.deepEqual(r.plugins(), ["@example/log2"]);
  // a fresh registry is isolated
  assert.equal(createRegistry().quantizers.has("log2"), false);
});

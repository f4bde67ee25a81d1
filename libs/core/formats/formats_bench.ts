import { getFormat } from "../default_registry.ts";

const x = new Float32Array(1 << 20).map((_, i) => Math.sin(i) * 3);

for (const name of ["fp8_e4m3fn", "fp8_e5m2", "fp4_e2m1fn", "int8", "mxfp4", "nvfp4", "ternary"]) {
  const f = getFormat(name);
  const codes = f.encode(x);
  Deno.bench(`${name} encode 2^20 values`, { group: "encode" }, () => {
    f.encode(x);
  });
  Deno.bench(`${name} decode 2^20 values`, { group: "decode" }, () => {
    f.decode(codes);
  });
}

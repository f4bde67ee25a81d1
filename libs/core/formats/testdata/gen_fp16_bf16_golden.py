# Generates fp16_bf16_golden.json: float32 inputs (as uint32 bit patterns) and
# the codes numpy (float32 -> float16) and torch (float32 -> bfloat16) give.
# Both round to nearest even and overflow to Inf. Run: /usr/bin/python3 gen_fp16_bf16_golden.py
# (numpy and torch 1.13 were used; nothing at run time needs Python.)
import json
import numpy as np
import torch

rng = np.random.default_rng(20261123)
special = np.array([0.0, -0.0, 1.0, 65504.0, 65519.0, 65520.0, 2**-24, 2**-25, 3 * 2**-26,
                    2**-149, np.inf, -np.inf, 3.4028235e38, 1.5, 1.0009765625, 1.00048828125,
                    1.000732421875, 2**-14, 2**-133, 2**-134, 3 * 2**-135], dtype=np.float32)
rand_bits = rng.integers(0, 2**32, size=3000, dtype=np.uint64).astype(np.uint32)
rand = rand_bits.view(np.float32)
rand = rand[~np.isnan(rand)]
# values near the fp16 range, where rounding matters
near = (rng.standard_normal(2000) * 1000).astype(np.float32)
x = np.concatenate([special, rand, near]).astype(np.float32)
fp16 = x.astype(np.float16).view(np.uint16)
bf16 = torch.from_numpy(x.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
json.dump({
    "source": "numpy float32->float16, torch 1.13 float32->bfloat16",
    "inputs": [int(b) for b in x.view(np.uint32)],
    "fp16": [int(c) for c in fp16],
    "bf16": [int(c) for c in bf16],
}, open("fp16_bf16_golden.json", "w"))
print(len(x), "inputs")

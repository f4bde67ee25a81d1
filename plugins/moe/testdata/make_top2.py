# Makes top2_moe.onnx: a small random Mixtral-style MoE block (top-2 of 4 experts, SwiGLU experts,
# one-hot expert mask, torch.where dispatch, index_add_ combine) and torch's outputs on random
# tokens, for the plugin's robustness tests on a dispatch form other than the digits fixture's.
#   cd plugins/moe/testdata && /usr/bin/python3 make_top2.py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
D, H, E, K = 16, 32, 4, 2


class Expert(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = nn.Linear(D, H, bias=False)
        self.w3 = nn.Linear(D, H, bias=False)
        self.w2 = nn.Linear(H, D, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = nn.Linear(D, E, bias=False)
        self.experts = nn.ModuleList([Expert() for _ in range(E)])

    def forward(self, x):  # x: [tokens, D]
        logits = self.gate(x)
        w = F.softmax(logits, dim=1, dtype=torch.float)
        w, sel = torch.topk(w, K, dim=-1)
        w = w / w.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(x)
        mask = F.one_hot(sel, num_classes=E).permute(2, 1, 0)  # [E, K, T]
        for e in range(E):
            idx, top_x = torch.where(mask[e])
            cur = x[top_x]
            y = self.experts[e](cur) * w[top_x, idx, None]
            out.index_add_(0, top_x, y)
        return out


m = Block().eval()
x = torch.randn(64, D)
with torch.no_grad():
    y = m(x)
torch.onnx.export(m, (x,), "top2_moe.onnx", input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "tokens"}, "y": {0: "tokens"}}, opset_version=17)
np.save("top2_x.npy", x.numpy())
np.save("top2_y.npy", y.numpy())

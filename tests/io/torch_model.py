#!/usr/bin/python3
"""PyTorch's own encoder as the reference (run when torch is installed;
exit 77 = skipped otherwise). Writes OUT/torch_NORM_ACT.safetensors (the
state_dict of nn.TransformerEncoder(norm_first=NORM == "pre",
activation=ACT)), OUT/torch_NORM_ACT_x.npy and OUT/torch_NORM_ACT_expect.npy
(PyTorch's output in float64), the same with a causal mask as
OUT/torch_NORM_ACT_causal_expect.npy, and OUT/torch_NORM_ACT_meta.safetensors:
the same weights with __metadata__ num_heads, norm and activation.

usage: torch_model.py OUT HEADS D F LAYERS B L NORM ACT
       NORM: pre | post; ACT: gelu | gelu-tanh | relu
"""
import sys

import numpy as np

from st_util import st_bytes

try:
    import torch
except ImportError:
    print("torch is not installed (apt-get install python3-torch): skipped")
    sys.exit(77)

out = sys.argv[1]
heads, D, F, layers, B, L = (int(a) for a in sys.argv[2:8])
norm, act = sys.argv[8], sys.argv[9]
activation = {"gelu": "gelu", "relu": "relu",
              "gelu-tanh": lambda z: torch.nn.functional.gelu(z, approximate="tanh")}[act]
torch.manual_seed(5)
layer = torch.nn.TransformerEncoderLayer(d_model=D, nhead=heads, dim_feedforward=F, dropout=0.0, activation=activation,
                                         batch_first=True, norm_first=norm == "pre")
model = torch.nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False).double().eval()
with torch.no_grad():   # non-trivial LayerNorm parameters
    for name, p in model.named_parameters():
        if "norm" in name:
            p.add_(0.2 * torch.rand_like(p) - 0.1)

tag = f"{out}/torch_{norm}_{act}"
tensors = [(name, "F32", p.detach().to(torch.float32).contiguous().numpy()) for name, p in model.state_dict().items()]
with open(f"{tag}.safetensors", "wb") as f:
    f.write(st_bytes(tensors))
with open(f"{tag}_meta.safetensors", "wb") as f:
    f.write(st_bytes(tensors, meta={"num_heads": str(heads), "norm": norm, "activation": act}))

# the reference runs the float32-rounded weights in float64
with torch.no_grad():
    for p in model.parameters():
        p.copy_(p.to(torch.float32).to(torch.float64))
    x = torch.rand(B, L, D, dtype=torch.float32) * 2 - 1
    np.save(f"{tag}_x.npy", x.numpy())
    y = model(x.double())
    np.save(f"{tag}_expect.npy", y.numpy().astype(np.float32))
    mask = torch.triu(torch.full((L, L), float("-inf"), dtype=torch.float64), 1)
    y = model(x.double(), mask=mask)
    np.save(f"{tag}_causal_expect.npy", y.numpy().astype(np.float32))
print(f"torch {torch.__version__}: wrote {tag}.safetensors ({len(tensors)} tensors; {norm}-LN, {act})")

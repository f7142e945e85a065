#!/usr/bin/python3
"""PyTorch's nn.MultiheadAttention with key_padding_mask as the reference for
helix run --kv-len (exit 77 = skipped when torch is not installed). Writes
OUT/mha.safetensors (the module's state_dict: in_proj_weight, in_proj_bias,
out_proj.weight, out_proj.bias), OUT/mha_x.npy, and PyTorch's float64 output
for each mask: OUT/mha_pad.npy (padding only), OUT/mha_pad_causal.npy
(padding and a causal mask).

usage: torch_mha.py OUT HEADS D L KV_LEN[,KV_LEN...]   (B = number of lengths)
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
heads, D, L = (int(a) for a in sys.argv[2:5])
kv = [int(v) for v in sys.argv[5].split(",")]
B = len(kv)
torch.manual_seed(11)
mha = torch.nn.MultiheadAttention(D, heads, bias=True, batch_first=True).double().eval()
with torch.no_grad():
    mha.in_proj_bias.uniform_(-0.1, 0.1)
    mha.out_proj.bias.uniform_(-0.1, 0.1)
    for p in mha.parameters():          # the reference runs the f32-rounded weights in float64
        p.copy_(p.to(torch.float32).to(torch.float64))
tensors = [(n, "F32", p.detach().to(torch.float32).contiguous().numpy()) for n, p in mha.state_dict().items()]
with open(f"{out}/mha.safetensors", "wb") as f:
    f.write(st_bytes(tensors))

x = torch.rand(B, L, D, dtype=torch.float32) * 2 - 1
np.save(f"{out}/mha_x.npy", x.numpy())
pad = torch.arange(L)[None, :] >= torch.tensor(kv)[:, None]          # True = padding, PyTorch's convention
causal = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
with torch.no_grad():
    xd = x.double()
    y, _ = mha(xd, xd, xd, key_padding_mask=pad, need_weights=False)
    np.save(f"{out}/mha_pad.npy", y.numpy().astype(np.float32))
    y, _ = mha(xd, xd, xd, key_padding_mask=pad, attn_mask=causal, need_weights=False)
    np.save(f"{out}/mha_pad_causal.npy", y.numpy().astype(np.float32))
print(f"torch {torch.__version__}: nn.MultiheadAttention D={D} heads={heads} B={B} L={L} kv_len={kv}")

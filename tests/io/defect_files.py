#!/usr/bin/python3
"""Files for tests/test_defects.sh, written into OUT:
  meta8.safetensors      nn.MultiheadAttention names, D=32, __metadata__ num_heads=8
  big.safetensors        100 002 tensors (16 667 tiny layers): the name index
  empty_after.safetensors  an empty [0, 0] tensor listed after one with the same begin
  f16_overflow.safetensors q/k/v/o_proj with one finite f32 value (70000) f16 cannot hold
  sparse.safetensors     in_proj_weight [3D, D] + out_proj of D=32768 (16 GiB, sparse)
  sparse.npy             X [1, 8, 2**26] f32 (2 GiB, sparse)
  x16.npy                X [1, 8, 32] f32 with one value 70000
usage: defect_files.py OUT
"""
import json
import os
import struct
import sys

import numpy as np

from st_util import st_bytes

out = sys.argv[1]
rng = np.random.default_rng(3)
D = 32


def w(name, data):
    with open(f"{out}/{name}", "wb") as f:
        f.write(data)


mha = [("in_proj_weight", "F32", rng.uniform(-0.3, 0.3, (3 * D, D)).astype(np.float32)),
       ("out_proj.weight", "F32", rng.uniform(-0.3, 0.3, (D, D)).astype(np.float32))]
w("meta8.safetensors", st_bytes(mha, meta={"num_heads": "8"}))
w("meta_bad.safetensors", st_bytes(mha, meta={"num_heads": "eight"}))

# 16 667 pre-LN layers of D = F = 2, 6 tensors each (no biases): 100 002 tensors
d2, one = np.full((2, 2), 0.1, np.float32), np.ones((2,), np.float32)
big = []
for i in range(16667):
    big += [(f"layers.{i}.norm1.weight", "F32", one), (f"layers.{i}.norm2.weight", "F32", one),
            (f"layers.{i}.self_attn.in_proj_weight", "F32", np.full((6, 2), 0.1, np.float32)),
            (f"layers.{i}.self_attn.out_proj.weight", "F32", d2),
            (f"layers.{i}.linear1.weight", "F32", d2), (f"layers.{i}.linear2.weight", "F32", d2)]
w("big.safetensors", st_bytes(big))

hdr = json.dumps({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                  "b": {"dtype": "F32", "shape": [0, 0], "data_offsets": [0, 0]}}).encode()
w("empty_after.safetensors", struct.pack("<Q", len(hdr)) + hdr + bytes(16))

proj = {n: rng.uniform(-0.3, 0.3, (D, D)).astype(np.float32) for n in ("q_proj", "k_proj", "v_proj", "o_proj")}
proj["q_proj"][3, 5] = 70000.0
w("f16_overflow.safetensors", st_bytes([(f"{n}.weight", "F32", a) for n, a in proj.items()]))

# huge but sparse: headers only, data left as holes
Dbig = 32768
n_in, n_out = 3 * Dbig * Dbig * 4, Dbig * Dbig * 4
hdr = json.dumps({"in_proj_weight": {"dtype": "F32", "shape": [3 * Dbig, Dbig], "data_offsets": [0, n_in]},
                  "out_proj.weight": {"dtype": "F32", "shape": [Dbig, Dbig], "data_offsets": [n_in, n_in + n_out]}})
hdr = hdr.encode() + b" " * ((8 - len(hdr) % 8) % 8)
with open(f"{out}/sparse.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr)
    f.truncate(8 + len(hdr) + n_in + n_out)
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 8, 67108864), }"
h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
with open(f"{out}/sparse.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
    f.truncate(f.tell() + 8 * 67108864 * 4)

w("in_proj_1d.safetensors", st_bytes([("in_proj_weight", "F32", np.zeros((3,), np.float32))]))
w("in_proj_00.safetensors", st_bytes([("in_proj_weight", "F32", np.zeros((0, 0), np.float32))]))

x = rng.uniform(-1, 1, (1, 8, D)).astype(np.float32)
x[0, 3, 5] = 70000.0
np.save(f"{out}/x16.npy", x)
np.save(f"{out}/x32.npy", rng.uniform(-1, 1, (1, 8, D)).astype(np.float32))
x[0, 3, 5] = 0.5
np.save(f"{out}/xhuge.npy", (x * 3e37).astype(np.float32))

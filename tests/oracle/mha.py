#!/usr/bin/python3
"""Independent float64 NumPy multi-head attention: writes fixtures for test_oracle.

For each case it draws X and the weights, computes the output in float64
(einsum, explicit softmax, nothing shared with helix), and writes .npy files
plus meta.txt into OUT/<case>/. Weights use the math convention y = x W
([in, out]). "sliced" cases compute MHA with h*m heads of width d/m.
"""
import os
import sys

import numpy as np


def mha(x, wq, wk, wv, wo, bq, bk, bv, bo, heads, causal, scale, kv_len=None):
    B, L, D = x.shape
    d = D // heads
    q = x @ wq + (bq if bq is not None else 0)
    k = x @ wk + (bk if bk is not None else 0)
    v = x @ wv + (bv if bv is not None else 0)
    q = q.reshape(B, L, heads, d)
    k = k.reshape(B, L, heads, d)
    v = v.reshape(B, L, heads, d)
    s = np.einsum("bqhe,bkhe->bhqk", q, k) * scale
    if causal:
        s = np.where(np.tril(np.ones((L, L), dtype=bool)), s, -np.inf)
    if kv_len is not None:  # key padding: batch row b sees keys < kv_len[b]
        keep = np.arange(L)[None, :] < np.asarray(kv_len)[:, None]          # [B, L_k]
        s = np.where(keep[:, None, None, :], s, -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    o = np.einsum("bhqk,bkhe->bqhe", p, v).reshape(B, L, D)
    if wo is not None:
        o = o @ wo + (bo if bo is not None else 0)
    return o


CASES = [
    # name, n, m, h, d, B, L, mode, causal, out_proj, bias, dtype
    ("exact_2x2", 2, 2, 4, 16, 2, 37, "exact", 0, 1, 0, "f4"),
    ("exact_causal_bias_4x4", 4, 4, 8, 32, 2, 70, "exact", 1, 1, 1, "f4"),
    ("exact_noout_1x4", 1, 4, 2, 16, 3, 65, "exact", 0, 0, 1, "f4"),
    ("exact_2x8_queries", 2, 8, 4, 32, 1, 50, "exact", 1, 0, 0, "f4"),
    ("sliced_2x2", 2, 2, 4, 16, 2, 33, "sliced", 0, 1, 1, "f4"),
    ("sliced_causal_4x1", 4, 1, 4, 8, 2, 64, "sliced", 1, 0, 0, "f4"),
    ("exact_f16_2x2", 2, 2, 4, 16, 2, 40, "exact", 1, 1, 1, "f2"),
]
# key padding lengths per batch row (PyTorch's key_padding_mask, as lengths)
KV_LEN = {
    "pad_exact_2x2": [37, 20],            # regather by heads, and scores
    "pad_exact_causal_2x8": [50, 9, 33],  # regather by queries (m > h_g), causal
    "pad_sliced_4x2": [1, 64],            # one key only in row 0
    "pad_exact_f16_2x2": [40, 17],
}
CASES += [
    ("pad_exact_2x2", 2, 2, 4, 16, 2, 37, "exact", 0, 1, 1, "f4"),
    ("pad_exact_causal_2x8", 2, 8, 4, 32, 3, 50, "exact", 1, 1, 0, "f4"),
    ("pad_sliced_4x2", 4, 2, 4, 16, 2, 64, "sliced", 0, 0, 0, "f4"),
    ("pad_exact_f16_2x2", 2, 2, 4, 16, 2, 40, "exact", 1, 0, 1, "f2"),
]


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(20261122)
    os.makedirs(out, exist_ok=True)
    names = []
    for name, n, m, h, d, B, L, mode, causal, out_proj, bias, dt in CASES:
        D = h * d
        a = np.sqrt(3.0 / D)
        arr = {
            "x": rng.uniform(-1, 1, (B, L, D)),
            "wq": rng.uniform(-a, a, (D, D)),
            "wk": rng.uniform(-a, a, (D, D)),
            "wv": rng.uniform(-a, a, (D, D)),
        }
        if out_proj:
            arr["wo"] = rng.uniform(-a, a, (D, D))
        if bias:
            for b in ("bq", "bk", "bv") + (("bo",) if out_proj else ()):
                arr[b] = rng.uniform(-0.1, 0.1, (D,))
        # round to the file's dtype first: the oracle sees exactly what helix reads
        arr = {k: v.astype(np.dtype("<" + dt)) for k, v in arr.items()}
        f = {k: v.astype(np.float64) for k, v in arr.items()}
        heads = h * m if mode == "sliced" else h
        scale = 1.0 / np.sqrt(D // heads)
        y = mha(f["x"], f["wq"], f["wk"], f["wv"], f.get("wo"), f.get("bq"), f.get("bk"),
                f.get("bv"), f.get("bo"), heads, causal, scale, KV_LEN.get(name))
        case_dir = os.path.join(out, name)
        os.makedirs(case_dir, exist_ok=True)
        for k, v in arr.items():
            np.save(os.path.join(case_dir, k + ".npy"), v)
        np.save(os.path.join(case_dir, "y.npy"), y.astype("<f4"))
        if name in KV_LEN:
            np.save(os.path.join(case_dir, "kv_len.npy"), np.asarray(KV_LEN[name], dtype="<f4"))
        with open(os.path.join(case_dir, "meta.txt"), "w") as fh:
            fh.write(f"{n} {m} {h} {d} {B} {L} {mode} {causal} {out_proj} {bias} {dt}\n")
        names.append(name)
    with open(os.path.join(out, "cases.txt"), "w") as fh:
        fh.write("\n".join(names) + "\n")
    print(f"wrote {len(names)} float64 NumPy fixtures to {out}")


if __name__ == "__main__":
    main()

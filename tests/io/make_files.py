#!/usr/bin/python3
"""Writes weight/input files for the I/O tests into OUT/:

good/   safetensors + .npy written like PyTorch/NumPy would, with the float64
        NumPy MHA of each (PyTorch convention y = x W^T + b) as *_expect.npy,
        and runs.txt: one line per run "weights input heads prefix expect tol".
bad/    one malformed file per validation rule, and bad.txt: one line per
        case "file<TAB>command<TAB>expected message".
"""
import json
import os
import struct
import sys

import numpy as np

from st_util import bf16, from_bf16, st_bytes

OUT = sys.argv[1]
rng = np.random.default_rng(7)


def mha_torch(x, W, heads):
    """float64 MHA in PyTorch's convention; W: dict of float64 arrays."""
    B, L, D = x.shape
    d = D // heads
    lin = lambda t, w, b: t @ w.T + (b if b is not None else 0)
    q = lin(x, W["q"], W.get("bq")).reshape(B, L, heads, d)
    k = lin(x, W["k"], W.get("bk")).reshape(B, L, heads, d)
    v = lin(x, W["v"], W.get("bv")).reshape(B, L, heads, d)
    s = np.einsum("bqhe,bkhe->bhqk", q, k) / np.sqrt(d)
    s -= s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    o = np.einsum("bhqk,bkhe->bqhe", p, v).reshape(B, L, D)
    if "o" in W:
        o = lin(o, W["o"], W.get("bo"))
    return o


def weights(D, bias, out):
    a = np.sqrt(1.0 / D)
    W = {n: rng.uniform(-a, a, (D, D)) for n in ("q", "k", "v") + (("o",) if out else ())}
    if bias:
        for n in ("bq", "bk", "bv") + (("bo",) if out else ()):
            W[n] = rng.uniform(-0.1, 0.1, D)
    return W


def good():
    d = os.path.join(OUT, "good")
    os.makedirs(d, exist_ok=True)
    runs = []
    cases = [
        # name, layout, D, heads, B, L, bias, out, dtype, prefix, grid n m
        ("mha_f32_bias", "mha", 64, 4, 2, 33, True, True, "f32", "model.layers.0.self_attn.", 2, 2),
        ("mha_f16_plain", "mha", 64, 8, 1, 70, False, True, "f16", "", 4, 4),
        ("sep_f32_noout", "sep", 48, 3, 2, 20, True, False, "f32", "", 3, 1),
        ("sep_f16_oproj", "sep", 64, 4, 2, 40, False, True, "f16", "enc.", 1, 4),
        ("sep_bf16_bias", "sep", 32, 2, 1, 24, True, True, "bf16", "", 2, 2),
    ]
    for name, layout, D, heads, B, L, bias, out, dt, prefix, gn, gm in cases:
        W = weights(D, bias, out)
        # round to the file's dtype: the oracle sees what helix reads
        if dt == "f16":
            W = {k: v.astype(np.float16) for k, v in W.items()}
            enc = lambda a: a.astype(np.float16)
            sdt = "F16"
        elif dt == "bf16":
            W = {k: bf16(v) for k, v in W.items()}
            enc = lambda a: a if a.dtype == np.uint16 else bf16(a)
            sdt = "BF16"
        else:
            W = {k: v.astype(np.float32) for k, v in W.items()}
            enc = lambda a: a.astype(np.float32)
            sdt = "F32"
        W64 = {k: (from_bf16(v) if dt == "bf16" else v).astype(np.float64) for k, v in W.items()}
        t = []
        if layout == "mha":
            t.append((prefix + "in_proj_weight", sdt, enc(np.concatenate([W["q"], W["k"], W["v"]]))))
            if bias:
                t.append((prefix + "in_proj_bias", sdt, enc(np.concatenate([W["bq"], W["bk"], W["bv"]]))))
            if out:
                t.append((prefix + "out_proj.weight", sdt, enc(W["o"])))
                if bias:
                    t.append((prefix + "out_proj.bias", sdt, enc(W["bo"])))
        else:
            for n in ("q", "k", "v"):
                t.append((prefix + n + "_proj.weight", sdt, enc(W[n])))
                if bias:
                    t.append((prefix + n + "_proj.bias", sdt, enc(W["b" + n])))
            if out:
                t.append((prefix + "o_proj.weight", sdt, enc(W["o"])))
                if bias:
                    t.append((prefix + "o_proj.bias", sdt, enc(W["bo"])))
        t.append(("unrelated.scale", sdt, enc(np.ones(3, dtype=np.float32))))
        with open(os.path.join(d, name + ".safetensors"), "wb") as f:
            f.write(st_bytes(t))
        xdt = np.float16 if dt == "f16" else np.float32
        x = rng.uniform(-1, 1, (B, L, D)).astype(xdt)
        np.save(os.path.join(d, name + "_x.npy"), x)
        y = mha_torch(x.astype(np.float64), W64, heads)
        np.save(os.path.join(d, name + "_expect.npy"), y.astype(np.float32))
        tol = {"f32": 2e-5, "f16": 4e-3, "bf16": 3e-2}[dt]
        runs.append(f"{name} {heads} {prefix or '-'} {tol} {gn} {gm}")
    with open(os.path.join(d, "runs.txt"), "w") as f:
        f.write("\n".join(runs) + "\n")


def bad():
    d = os.path.join(OUT, "bad")
    os.makedirs(d, exist_ok=True)
    cases = []
    ok_hdr = {"in_proj_weight": {"dtype": "F32", "shape": [12, 4], "data_offsets": [0, 192]}}

    def put(name, data, cmd, msg):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        cases.append(f"{name}\t{cmd}\t{msg}")

    def hdr(h, data=b"", raw=None):
        s = (raw if raw is not None else json.dumps(h)).encode()
        return struct.pack("<Q", len(s)) + s + data

    put("header_too_big.safetensors", struct.pack("<Q", 200_000_000) + b"{}", "inspect", "exceeds the 100 MB limit")
    put("header_past_end.safetensors", struct.pack("<Q", 1000) + b"{}" * 10, "inspect", "runs past the end of the file")
    put("too_short.safetensors", b"\x05\x00\x00", "inspect", "too short for a safetensors file")
    put("not_json.safetensors", hdr(None, raw="{abc"), "inspect", "header is not valid JSON")
    put("not_object.safetensors", hdr(None, raw="[1, 2]"), "inspect", "header is not a JSON object")
    put("duplicate_key.safetensors",
        hdr(None, raw='{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                      '"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', data=b"\0" * 4),
        "inspect", "duplicate")
    put("unknown_dtype.safetensors", hdr({"a": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
        "inspect", "unknown dtype 'F99'")
    put("unsupported_dtype.safetensors", hdr({"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8),
        "inspect", "dtype F64 is not supported")
    put("negative_shape.safetensors", hdr({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
        "inspect", "shape[0] is not a non-negative integer")
    put("float_shape.safetensors", hdr({"a": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 4]}}, b"\0" * 4),
        "inspect", "shape[0] is not a non-negative integer")
    put("shape_overflow.safetensors",
        hdr({"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 4]}}, b"\0" * 4),
        "inspect", "shape overflows")
    put("size_mismatch.safetensors", hdr({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}, b"\0" * 12),
        "inspect", "need 16 bytes but data_offsets hold 12")
    put("overlap.safetensors",
        hdr({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
        "inspect", "overlaps the tensor before it")
    put("gap.safetensors",
        hdr({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
             "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, b"\0" * 12),
        "inspect", "(a gap) before tensor 'b'")
    put("trailing.safetensors", hdr(ok_hdr, b"\0" * 200), "inspect", "8 trailing bytes after the last tensor")
    put("truncated.safetensors", hdr(ok_hdr, b"\0" * 100), "inspect", "truncated: the tensors need 192 data bytes")
    put("negative_offsets.safetensors", hdr({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 4),
        "inspect", "are not 0 <= begin <= end")
    put("missing_field.safetensors", hdr({"a": {"dtype": "F32", "shape": [1]}}, b"\0" * 4),
        "inspect", "must be an object with exactly dtype, shape, data_offsets")
    # NumPy
    def npy(header, data, ver=b"\x01\x00"):
        h = header.encode()
        h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
        return b"\x93NUMPY" + ver + struct.pack("<H", len(h)) + h + data
    put("bad_magic.npy", b"\x93NUMPX\x01\x00" + b"\0" * 60, "inspect", "not a .npy file (bad magic)")
    put("bad_version.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b"\0" * 4, b"\x09\x00"),
        "run-input", "unsupported .npy version 9.0")
    put("big_endian.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", b"\0" * 4),
        "inspect", "big-endian data ('>f4') is not supported")
    put("fortran.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", b"\0" * 4),
        "inspect", "Fortran-order arrays are not supported")
    put("int_dtype.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", b"\0" * 4),
        "inspect", "dtype '<i4' is not supported")
    put("npy_truncated.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", b"\0" * 20),
        "inspect", "truncated data: shape needs 24 bytes, file has 20")
    put("npy_trailing.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8),
        "inspect", "4 trailing bytes after the data")
    put("npy_bad_header.npy", npy("{'descr': '<f4', 'shape': (1,), }", b"\0" * 4),
        "inspect", "lacks 'fortran_order'")
    x_wrong = np.zeros((2, 5, 7), dtype=np.float32)
    np.save(os.path.join(d, "shape_mismatch.npy"), x_wrong)
    cases.append("shape_mismatch.npy\trun-input\thas shape [2, 5, 7], but the model needs [B, L, D=64]")
    # non-finite values
    W = weights(16, False, True)
    t = [("q_proj.weight", "F32", W["q"].astype(np.float32)), ("k_proj.weight", "F32", W["k"].astype(np.float32)),
         ("v_proj.weight", "F32", W["v"].astype(np.float32)), ("o_proj.weight", "F32", W["o"].astype(np.float32))]
    t[1][2][3, 5] = np.nan
    put("nan_weights.safetensors", st_bytes(t), "run-weights", "tensor 'k_proj.weight' has a non-finite value at [3, 5]")
    xi = rng.uniform(-1, 1, (1, 4, 16)).astype(np.float32)
    xi[0, 1, 2] = np.inf
    np.save(os.path.join(d, "inf_input.npy"), xi)
    cases.append("inf_input.npy\trun-input16\tnon-finite value (inf) at [0, 1, 2]")
    t[1][2][3, 5] = 0.5
    put("no_attention.safetensors", st_bytes([("foo.weight", "F32", np.ones((4, 4), dtype=np.float32))]),
        "run-weights", "no attention weights under prefix ''")
    put("ok16.safetensors", st_bytes(t), "none", "")
    with open(os.path.join(d, "bad.txt"), "w") as f:
        f.write("\n".join(cases) + "\n")


good()
bad()
print(f"wrote I/O test files to {OUT}")

#!/usr/bin/python3
"""Writes whole-model files for the model I/O test into OUT/:

good/   safetensors models written the way PyTorch names them
        (nn.TransformerEncoder: layers.{i}.norm1, self_attn.in_proj_weight,
        linear1, ...) and GPT-style (transformer.h.{i}.ln_1, attn.q_proj,
        mlp.fc1, ...), inputs X as .npy, and the float64 NumPy forward pass of
        each as *_expect.npy (sliced runs: the model with heads*m heads).
        runs.txt: "name heads layouts causal tol expect [prefix]" per run.
bad/    one broken model per rule, bad.txt: "file<TAB>options<TAB>message".

The NumPy model here is written from the definitions (pre-LN block, exact
GELU, LayerNorm eps 1e-5), not from helix's code.
"""
import os
import sys
from math import erf, sqrt

import numpy as np

from st_util import bf16, from_bf16, st_bytes

OUT = sys.argv[1]
rng = np.random.default_rng(11)
verf = np.vectorize(erf)


def st_write(path, tensors):
    """tensors: list of (name, dtype, array); bf16 arrays are uint16 bits."""
    with open(path, "wb") as f:
        f.write(st_bytes(tensors))


def layer_norm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


def forward(x, layers, heads, causal):
    """float64 pre-LN transformer; each layer a dict of PyTorch-shaped arrays."""
    B, L, D = x.shape
    d = D // heads
    lin = lambda t, w, b: t @ w.T + (b if b is not None else 0)
    mask = np.triu(np.full((L, L), -np.inf), 1) if causal else np.zeros((L, L))
    for W in layers:
        h = layer_norm(x, W["ln1_g"], W.get("ln1_b", 0))
        q = lin(h, W["q"], W.get("bq")).reshape(B, L, heads, d)
        k = lin(h, W["k"], W.get("bk")).reshape(B, L, heads, d)
        v = lin(h, W["v"], W.get("bv")).reshape(B, L, heads, d)
        s = np.einsum("bqhe,bkhe->bhqk", q, k) / np.sqrt(d) + mask
        s -= s.max(-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(-1, keepdims=True)
        o = np.einsum("bhqk,bkhe->bqhe", p, v).reshape(B, L, D)
        x = x + lin(o, W["o"], W.get("bo"))
        h = layer_norm(x, W["ln2_g"], W.get("ln2_b", 0))
        z = lin(h, W["w1"], W.get("b1"))
        z = 0.5 * z * (1 + verf(z / sqrt(2)))
        x = x + lin(z, W["w2"], W.get("b2"))
    return x


def random_layer(D, F, bias, ln_bias=True):
    a, c = sqrt(1.0 / D), sqrt(1.0 / F)
    W = {n: rng.uniform(-a, a, (D, D)) for n in ("q", "k", "v", "o")}
    W["w1"] = rng.uniform(-a, a, (F, D))
    W["w2"] = rng.uniform(-c, c, (D, F))
    W["ln1_g"] = 1 + rng.uniform(-0.2, 0.2, D)
    W["ln2_g"] = 1 + rng.uniform(-0.2, 0.2, D)
    if ln_bias:
        W["ln1_b"] = rng.uniform(-0.2, 0.2, D)
        W["ln2_b"] = rng.uniform(-0.2, 0.2, D)
    if bias:
        for n in ("bq", "bk", "bv", "bo", "b2"):
            W[n] = rng.uniform(-0.1, 0.1, D)
        W["b1"] = rng.uniform(-0.1, 0.1, F)
    return W


def torch_names(i, W, pre="layers.{i}."):
    """nn.TransformerEncoderLayer's state_dict names."""
    p = pre.format(i=i)
    t = [(p + "self_attn.in_proj_weight", np.concatenate([W["q"], W["k"], W["v"]]))]
    if "bq" in W:
        t.append((p + "self_attn.in_proj_bias", np.concatenate([W["bq"], W["bk"], W["bv"]])))
    t.append((p + "self_attn.out_proj.weight", W["o"]))
    if "bo" in W:
        t.append((p + "self_attn.out_proj.bias", W["bo"]))
    t += [(p + "linear1.weight", W["w1"]), (p + "linear2.weight", W["w2"])]
    if "b1" in W:
        t += [(p + "linear1.bias", W["b1"]), (p + "linear2.bias", W["b2"])]
    t += [(p + "norm1.weight", W["ln1_g"]), (p + "norm2.weight", W["ln2_g"])]
    if "ln1_b" in W:
        t += [(p + "norm1.bias", W["ln1_b"]), (p + "norm2.bias", W["ln2_b"])]
    return t


def gpt_names(i, W, pre="transformer.h.{i}."):
    p = pre.format(i=i)
    t = [(p + "attn.q_proj.weight", W["q"]), (p + "attn.k_proj.weight", W["k"]),
         (p + "attn.v_proj.weight", W["v"]), (p + "attn.o_proj.weight", W["o"]),
         (p + "mlp.fc1.weight", W["w1"]), (p + "mlp.fc2.weight", W["w2"]),
         (p + "ln_1.weight", W["ln1_g"]), (p + "ln_2.weight", W["ln2_g"])]
    if "ln1_b" in W:
        t += [(p + "ln_1.bias", W["ln1_b"]), (p + "ln_2.bias", W["ln2_b"])]
    if "bq" in W:
        t += [(p + "attn.q_proj.bias", W["bq"]), (p + "attn.k_proj.bias", W["bk"]),
              (p + "attn.v_proj.bias", W["bv"]), (p + "attn.o_proj.bias", W["bo"]),
              (p + "mlp.fc1.bias", W["b1"]), (p + "mlp.fc2.bias", W["b2"])]
    return t


def encode(tensors, dtype):
    """-> (file tensors, the values the file really holds, as float64)."""
    out, held = [], {}
    for n, a in tensors:
        if dtype == "F32":
            a32 = a.astype(np.float32)
            out.append((n, "F32", a32)); held[n] = a32.astype(np.float64)
        elif dtype == "F16":
            a16 = a.astype(np.float16)
            out.append((n, "F16", a16)); held[n] = a16.astype(np.float64)
        else:
            u = bf16(a)
            out.append((n, "BF16", u)); held[n] = from_bf16(u).astype(np.float64)
    return out, held


SUFFIX = [("in_proj_weight", "qkv"), ("in_proj_bias", "bqkv"), ("out_proj.weight", "o"), ("out_proj.bias", "bo"),
          ("q_proj.weight", "q"), ("k_proj.weight", "k"), ("v_proj.weight", "v"), ("o_proj.weight", "o"),
          ("q_proj.bias", "bq"), ("k_proj.bias", "bk"), ("v_proj.bias", "bv"), ("o_proj.bias", "bo"),
          ("linear1.weight", "w1"), ("linear1.bias", "b1"), ("linear2.weight", "w2"), ("linear2.bias", "b2"),
          ("mlp.fc1.weight", "w1"), ("mlp.fc1.bias", "b1"), ("mlp.fc2.weight", "w2"), ("mlp.fc2.bias", "b2"),
          ("norm1.weight", "ln1_g"), ("norm1.bias", "ln1_b"), ("norm2.weight", "ln2_g"), ("norm2.bias", "ln2_b"),
          ("ln_1.weight", "ln1_g"), ("ln_1.bias", "ln1_b"), ("ln_2.weight", "ln2_g"), ("ln_2.bias", "ln2_b")]


def name_key(n):
    for s, k in SUFFIX:
        if n.endswith(s):
            return k
    raise KeyError(n)


def held_layers(held, names_fn, layers):
    res = []
    for i, W in enumerate(layers):
        R = {}
        for n, _ in names_fn(i, W):
            R[name_key(n)] = held[n]
        if "qkv" in R:
            R["q"], R["k"], R["v"] = np.split(R.pop("qkv"), 3)
        if "bqkv" in R:
            R["bq"], R["bk"], R["bv"] = np.split(R.pop("bqkv"), 3)
        res.append(R)
    return res


def good():
    d = os.path.join(OUT, "good")
    os.makedirs(d, exist_ok=True)
    runs = []
    cases = [
        # name, naming, prefix given?, D, heads, F, layers, B, L, bias, ln_bias, dtype, causal, layouts
        ("enc_f32", torch_names, None, 32, 4, 64, 4, 2, 24, True, True, "F32", False,
         "helix2x2-exact,tp2pp2,tp4,pp4"),
        ("enc_f32_causal", torch_names, None, 32, 4, 48, 2, 4, 16, True, True, "F32", True, "helix2x2-exact,tp2pp2"),
        ("gpt_bf16", gpt_names, None, 32, 4, 64, 2, 2, 16, False, False, "BF16", False, "helix2x2-exact,tp2pp2"),
        ("gpt_f16_bias", gpt_names, None, 32, 2, 64, 2, 2, 16, True, True, "F16", True, "tp2pp2"),
        ("custom_prefix", torch_names, "net.blk{i}/", 32, 4, 32, 2, 2, 8, True, True, "F32", False, "helix4x1-exact"),
    ]
    for name, fn, prefix, D, heads, F, nl, B, L, bias, lnb, dt, causal, layouts in cases:
        layers = [random_layer(D, F, bias, lnb) for _ in range(nl)]
        tensors = []
        for i, W in enumerate(layers):
            tensors += fn(i, W, prefix) if prefix else fn(i, W)
        st, held = encode(tensors, dt)
        st_write(os.path.join(d, name + ".safetensors"), st)
        x = rng.uniform(-1, 1, (B, L, D)).astype(np.float32)
        np.save(os.path.join(d, name + "_x.npy"), x)
        hl = held_layers(held, (lambda i, W: fn(i, W, prefix)) if prefix else fn, layers)
        np.save(os.path.join(d, name + "_expect.npy"), forward(x.astype(np.float64), hl, heads, causal).astype(np.float32))
        tol = {"F32": 1e-5, "F16": 5e-3, "BF16": 2e-2}[dt]
        pfx = prefix or "-"
        for lay in layouts.split(","):
            runs.append(f"{name} {heads} {lay} {int(causal)} {tol:g} {name}_expect {pfx}")
        if name == "enc_f32":   # sliced: the model with heads*m heads of width d/m
            np.save(os.path.join(d, name + "_expect_s2.npy"),
                    forward(x.astype(np.float64), hl, heads * 2, causal).astype(np.float32))
            runs.append(f"{name} {heads} helix2x2-sliced 0 {tol:g} {name}_expect_s2 -")
    with open(os.path.join(d, "runs.txt"), "w") as f:
        f.write("\n".join(runs) + "\n")


def bad():
    d = os.path.join(OUT, "bad")
    os.makedirs(d, exist_ok=True)
    cases = []
    D, F = 16, 32
    base = [random_layer(D, F, True) for _ in range(2)]

    def write(fname, tensors, opts, msg):
        st, _ = encode(tensors, "F32")
        st_write(os.path.join(d, fname), st)
        cases.append(f"{fname}\t{opts}\t{msg}")

    def model(drop=(), change=None):
        t = []
        for i, W in enumerate(base):
            for n, a in torch_names(i, W):
                if n in drop:
                    continue
                if change and n in change:
                    a = change[n]
                t.append((n, a))
        return t

    write("no_fc2.safetensors", model(drop={"layers.1.linear2.weight"}), "--heads 2",
          "layer 'layers.1.' has no MLP FC2: expected one of 'layers.1.linear2.weight'")
    write("fc1_shape.safetensors", model(change={"layers.0.linear1.weight": np.zeros((F, D + 1))}), "--heads 2",
          "tensor 'layers.0.linear1.weight' has shape [32, 17], expected [32, 16] (FC1 is [F, D])")
    write("fc2_shape.safetensors", model(change={"layers.1.linear2.weight": np.zeros((D, F // 2))}), "--heads 2",
          "tensor 'layers.1.linear2.weight' has shape [16, 16], expected [16, 32] (FC2 is [D, F])")
    write("ln_shape.safetensors", model(change={"layers.1.norm2.bias": np.zeros(D - 1)}), "--heads 2",
          "tensor 'layers.1.norm2.bias' has shape [15], expected [16]")
    other = random_layer(2 * D, F, True)
    t = [(n, a) for n, a in torch_names(0, base[0])] + [(n, a) for n, a in torch_names(1, other)]
    write("d_differs.safetensors", t, "--heads 2", "(D differs from layer 0)")
    t = [(n, a) for n, a in torch_names(0, base[0])] + [(n, a) for n, a in torch_names(2, base[1])]
    write("gap.safetensors", t, "--heads 2", "layer 1 is missing (layers 0 to 2 have tensors under 'layers.{i}.')")
    nan = base[1]["w1"].copy()
    nan[3, 5] = np.nan
    write("nan.safetensors", model(change={"layers.1.linear1.weight": nan}), "--heads 2",
          "tensor 'layers.1.linear1.weight' has a non-finite value (nan) at [3, 5]")
    write("no_wo.safetensors", model(drop={"layers.0.self_attn.out_proj.weight", "layers.0.self_attn.out_proj.bias"}),
          "--heads 2", "layer 'layers.0.' has attention without an output projection")
    write("no_layers.safetensors", [("embed.weight", np.zeros((4, 4)))], "--heads 2", "no transformer layers found")
    write("ok.safetensors", model(), "--heads 3", "has D=16, which --heads 3 does not divide")
    cases.append("ok.safetensors\t--heads 2 --ffn 64\t--ffn 64, but")
    cases.append("ok.safetensors\t--heads 2 --head-dim 4\t--head-dim 4, but")
    cases.append("ok.safetensors\t--heads 2 --layers 3\t--layers 3, but")
    cases.append("ok.safetensors\t--heads 2 --layer-prefix blocks.\tmust contain '{i}' once")
    cases.append("ok.safetensors\t--heads 2 --layer-prefix blocks.{i}.\tno tensor name matches the layer prefix 'blocks.{i}.'")
    np.save(os.path.join(d, "x_wrong_d.npy"), np.zeros((2, 8, D + 2), dtype=np.float32))
    cases.append("ok.safetensors\t--heads 2 --input BAD/x_wrong_d.npy\tbut the model needs [B, L, D=16]")
    xn = np.zeros((2, 8, D), dtype=np.float32)
    xn[1, 2, 3] = np.inf
    np.save(os.path.join(d, "x_inf.npy"), xn)
    cases.append("ok.safetensors\t--heads 2 --input BAD/x_inf.npy\tnon-finite value (inf) at [1, 2, 3]")
    with open(os.path.join(d, "bad.txt"), "w") as f:
        f.write("\n".join(cases) + "\n")


good()
bad()

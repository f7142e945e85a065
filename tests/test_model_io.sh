#!/usr/bin/env bash
# test_model_io.sh HELIX [IO_ASAN] — whole models from one safetensors file: models
# written by NumPy in PyTorch's nn.TransformerEncoder names and GPT-style
# names (f32, f16, bf16; biases or not; causal or not; a custom layer
# prefix) run through `helix bench layouts` in several layouts, in-process
# and over MPI, and their outputs are compared with a float64 NumPy forward
# pass (tests/io/make_model.py) and, where PyTorch is installed, with
# PyTorch's own nn.TransformerEncoder. Every broken model is refused (exit 2)
# with its own message; all the files go through the parsers and the model
# loader under AddressSanitizer + UBSan (IO_ASAN).
set -u
HELIX=$1; IO_ASAN=${2:-}
PY=${HELIX_PYTHON:-/usr/bin/python3}
here=$(dirname "$0")
. "$here/harness.sh"
. "$here/mpi_env.sh"
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$PY" "$here/io/make_model.py" "$dir" >/dev/null || { echo "make_model.py failed"; echo "0 passed, 1 failed"; exit 1; }

compare() {  # output expected tolerance
    "$PY" - "$1" "$2" "$3" <<'EOF_PY'
import sys, numpy as np
y = np.load(sys.argv[1]).astype(np.float64); e = np.load(sys.argv[2]).astype(np.float64)
err = np.abs(y - e).max() / np.abs(e).max() if y.shape == e.shape else float("inf")
print(f"    vs {sys.argv[2].rsplit('/', 1)[-1]}: {err:.2e} (tolerance {float(sys.argv[3]):.0e})")
sys.exit(0 if err <= float(sys.argv[3]) else 1)
EOF_PY
}

# run ENGINE WEIGHTS X EXPECT TOL HEADS LAYOUT [options...]
run() {
    local engine=$1 w=$2 x=$3 e=$4 tol=$5 heads=$6 lay=$7; shift 7
    local pre=(); [ "$engine" = mpi ] && pre=(mpirun -np 4)
    out=$("${pre[@]}" "$HELIX" bench layouts --devices 4 --layouts "$lay" --weights "$w" --input "$x" --heads "$heads" \
          --output "$dir/y.npy" $NA "$@" 2>&1 </dev/null); rc=$?
    if [ $rc -eq 0 ] && grep -q "engine $engine" <<<"$out" && compare "$dir/y.npy" "$e" "$tol"; then ok
    else bad "$engine $(basename "$w") $lay $*: rc=$rc"; echo "$out" | tail -4 >&2; fi
    rm -f "$dir/y.npy"
}

NA="--norm pre --activation gelu"   # what the NumPy models are (their files do not say)
g=$dir/good
echo "models written by NumPy, against the float64 NumPy forward pass:"
while read -r name heads lay causal tol expect prefix; do
    opts=(); [ "$causal" = 1 ] && opts+=(--causal); [ "$prefix" != - ] && opts+=(--layer-prefix "$prefix")
    echo "  $name $lay${opts[*]:+ ${opts[*]}}"
    run inproc "$g/$name.safetensors" "$g/${name}_x.npy" "$g/$expect.npy" "$tol" "$heads" "$lay" "${opts[@]}"
done <"$g/runs.txt"
echo "  over MPI (4 ranks):"
run mpi "$g/enc_f32.safetensors" "$g/enc_f32_x.npy" "$g/enc_f32_expect.npy" 1e-5 4 helix2x2-exact
run mpi "$g/enc_f32.safetensors" "$g/enc_f32_x.npy" "$g/enc_f32_expect.npy" 1e-5 4 tp2pp2
run mpi "$g/gpt_bf16.safetensors" "$g/gpt_bf16_x.npy" "$g/gpt_bf16_expect.npy" 2e-2 4 tp4
# --layers N runs the first N of a deeper file (the NumPy pass over 2 of enc_f32's 4 layers)
out=$("$HELIX" bench layouts --devices 4 --layouts tp4 --weights "$g/enc_f32.safetensors" --heads 4 --layers 2 $NA 2>&1)
if [ $? -eq 0 ] && grep -q "layers=2 " <<<"$out"; then ok; else bad "--layers 2 of 4: $out"; fi

echo "PyTorch's nn.TransformerEncoder, pre- and post-LN, GELU, GELU-tanh and ReLU:"
for v in "pre gelu" "post gelu" "pre relu" "post relu" "post gelu-tanh"; do
    set -- $v
    with_torch "$dir/torch.log" "$here/io/torch_model.py" "$dir" 4 32 96 2 2 20 "$1" "$2" || continue
    t=$dir/torch_$1_$2
    for lay in helix2x2-exact tp2pp2 tp4; do
        run inproc "$t.safetensors" "${t}_x.npy" "${t}_expect.npy" 1e-5 4 "$lay" --norm "$1" --activation "$2"
        run mpi "$t.safetensors" "${t}_x.npy" "${t}_expect.npy" 1e-5 4 "$lay" --norm "$1" --activation "$2"
    done
    run inproc "$t.safetensors" "${t}_x.npy" "${t}_causal_expect.npy" 1e-5 4 tp2pp2 --causal --norm "$1" --activation "$2"
    # the file's __metadata__ says all three: no options needed
    out=$("$HELIX" bench layouts --devices 4 --layouts helix2x2-exact --weights "${t}_meta.safetensors" --input "${t}_x.npy" \
          --output "$dir/y.npy" 2>&1) && compare "$dir/y.npy" "${t}_expect.npy" 1e-5 && ok || bad "$1 $2 from __metadata__: $out"
    # a state_dict records none of them: refuse to guess, naming each option
    for miss in --heads --norm --activation; do
        a=(); [ $miss != --heads ] && a+=(--heads 4); [ $miss != --norm ] && a+=(--norm "$1")
        [ $miss != --activation ] && a+=(--activation "$2")
        out=$("$HELIX" bench layouts --devices 4 --layouts tp4 --weights "$t.safetensors" "${a[@]}" 2>&1); rc=$?
        if [ $rc -eq 2 ] && grep -q "does not record .*give $miss" <<<"$out"; then ok; else bad "without $miss: rc=$rc: $out"; fi
    done
done
# the wrong placement or activation is not PyTorch's model (so the checks above can fail)
t=$dir/torch_post_relu
if [ -f "$t.safetensors" ]; then
    "$HELIX" bench layouts --devices 4 --layouts tp4 --weights "$t.safetensors" --input "${t}_x.npy" --heads 4 --norm pre \
        --activation relu --output "$dir/y.npy" >/dev/null 2>&1
    compare "$dir/y.npy" "${t}_expect.npy" 1e-5 >/dev/null && bad "post-LN run as pre-LN matched PyTorch" || ok
fi

echo "broken models and contradicting options are refused (exit 2) with their own message:"
b=$dir/bad
while IFS=$'\t' read -r file opts msg; do
    read -r -a args <<<"${opts//BAD/$b}"
    out=$("$HELIX" bench layouts --devices 4 --layouts tp4 --weights "$b/$file" $NA "${args[@]}" 2>&1); rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$msg" <<<"$out"; then ok
    else bad "$file $opts: rc=$rc, want 2 and '$msg'; got: $out"; fi
done <"$b/bad.txt"
# helix inspect names the model it finds, and why not when it finds none
out=$("$HELIX" inspect "$g/enc_f32.safetensors" 2>&1)
if grep -q "whole model (helix bench layouts --weights): 4 layers under 'layers.{i}.', D=32, F=64, biases yes" <<<"$out" &&
   grep -qE "layers.3.linear1.weight +f32 +\[64, 32\] .* L3 FC1\^T" <<<"$out"; then ok; else bad "inspect enc_f32: $out"; fi
out=$("$HELIX" inspect "$g/custom_prefix.safetensors" --layer-prefix 'net.blk{i}/' 2>&1)
grep -q "2 layers under 'net.blk{i}/'" <<<"$out" && ok || bad "inspect --layer-prefix: $out"
out=$("$HELIX" inspect "$b/gap.safetensors" 2>&1)
grep -q "no whole model found: .*layer 1 is missing" <<<"$out" && ok || bad "inspect gap: $out"
# the same refusal over MPI: every rank stops, none hangs
out=$(timeout 120 mpirun -np 4 "$HELIX" bench layouts --layouts tp4 --weights "$b/nan.safetensors" --heads 2 $NA 2>&1 </dev/null); rc=$?
if [ $rc -eq 2 ] && grep -qF "non-finite value (nan) at [3, 5]" <<<"$out"; then ok; else bad "mpi nan.safetensors: rc=$rc: $out"; fi
# --allow-nonfinite runs it; the NaN then reaches the output and the check fails (exit 1, not 2)
"$HELIX" bench layouts --devices 4 --layouts tp2pp2 --weights "$b/nan.safetensors" --heads 2 --batch 2 --seq 16 --allow-nonfinite $NA >/dev/null 2>&1
rc=$?; [ $rc -eq 1 ] && ok || bad "--allow-nonfinite: rc=$rc, want 1"

if [ -n "$IO_ASAN" ]; then
    if out=$("$IO_ASAN" "$g"/* "$b"/* "$dir"/*.safetensors 2>&1); then ok; else bad "loader under ASan/UBSan: $out"; fi
    echo "$out" | tail -1
fi
summary

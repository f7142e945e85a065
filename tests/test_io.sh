#!/usr/bin/env bash
# test_io.sh HELIX IO_ASAN — real weights in, real activations out:
# safetensors and .npy files written by NumPy (tests/io/make_files.py) in
# both PyTorch name layouts, f32/f16/bf16, with and without biases and W_O,
# run in-process and over MPI and compared with the float64 NumPy MHA; every
# malformed file is refused (exit 2) with its own message; the parsers run
# under AddressSanitizer + UBSan over all of them. Key padding (--kv-len) is
# compared with PyTorch's nn.MultiheadAttention when torch is installed.
set -u
HELIX=$1; IO_ASAN=$2
PY=${HELIX_PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/mpi_env.sh"
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$PY" "$(dirname "$0")/io/make_files.py" "$dir" >/dev/null || { echo "make_files.py failed"; echo "0 passed, 1 failed"; exit 1; }

compare() {  # file expected tol [what the expected output is]
    "$PY" - "$1" "$2" "$3" "${4:-NumPy float64}" <<'EOF_PY'
import sys, numpy as np
y = np.load(sys.argv[1]).astype(np.float64); e = np.load(sys.argv[2]).astype(np.float64)
err = np.abs(y - e).max() / np.abs(e).max()
print(f"  vs {sys.argv[4]}: {err:.2e} (tolerance {float(sys.argv[3]):.0e})")
sys.exit(0 if y.shape == e.shape and err <= float(sys.argv[3]) else 1)
EOF_PY
}

g=$dir/good
while read -r name heads prefix tol n m; do
    [ "$prefix" = "-" ] && prefix=""
    args=(--weights "$g/$name.safetensors" --weights-prefix "$prefix" --input "$g/${name}_x.npy" --heads "$heads"
          --groups "$n" --slices "$m")
    out=$("$HELIX" run "${args[@]}" --output "$dir/y.npy" 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -q PASS <<<"$out" && compare "$dir/y.npy" "$g/${name}_expect.npy" "$tol"; then ok
    else bad "inproc $name: rc=$rc"; echo "$out" | tail -3 >&2; fi
    out=$(mpirun -np $((n * m)) "$HELIX" run "${args[@]}" --exact-algo scores --output "$dir/ym.npy" 2>&1 </dev/null); rc=$?
    if [ $rc -eq 0 ] && grep -q "engine=mpi" <<<"$out" && compare "$dir/ym.npy" "$g/${name}_expect.npy" "$tol"; then ok
    else bad "mpi $name: rc=$rc"; echo "$out" | tail -3 >&2; fi
done <"$g/runs.txt"

b=$dir/bad
while IFS=$'\t' read -r file kind msg; do
    case $kind in
        inspect)     cmd=(inspect "$b/$file") ;;
        run-input)   cmd=(run --input "$b/$file" --heads 16 --head-dim 4) ;;
        run-input16) cmd=(run --input "$b/$file" --heads 4 --head-dim 4 --groups 2 --slices 2) ;;
        run-weights) cmd=(run --weights "$b/$file" --heads 4 --groups 2 --slices 2) ;;
        none) continue ;;
    esac
    out=$("$HELIX" "${cmd[@]}" 2>&1); rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$msg" <<<"$out" && grep -qF -- "$file" <<<"$out"; then ok
    else bad "$file ($kind): rc=$rc, want 2 and '$msg' with the file name; got: $out"; fi
done <"$b/bad.txt"

# --allow-nonfinite lets it run (the check then fails on NaN output: exit 1, not 2)
"$HELIX" run --weights "$b/nan_weights.safetensors" --heads 4 --groups 2 --slices 2 --allow-nonfinite >/dev/null 2>&1
rc=$?; [ $rc -eq 1 ] && ok || bad "--allow-nonfinite: rc=$rc, want 1"
# contradictions between files and options name both
chk() { local want=$1; shift; out=$("$HELIX" run "$@" 2>&1); rc=$?
        if [ $rc -eq 2 ] && grep -qF -- "$want" <<<"$out"; then ok; else bad "run $*: rc=$rc: $out"; fi; }
chk "--heads 4 x --head-dim 8 = 32, but $b/ok16.safetensors has D=16" --weights "$b/ok16.safetensors" --heads 4 --head-dim 8
chk "has D=16 (tensor 'q_proj.weight'), not divisible by --heads 3" --weights "$b/ok16.safetensors" --heads 3
chk "--batch 3, but $g/mha_f32_bias_x.npy has B=2" --weights "$g/mha_f32_bias.safetensors" \
    --weights-prefix model.layers.0.self_attn. --input "$g/mha_f32_bias_x.npy" --heads 4 --groups 2 --slices 2 --batch 3
chk "--bias, but" --weights "$b/ok16.safetensors" --heads 4 --groups 2 --slices 2 --bias
# an unreadable file is an I/O error (3), not a format error
"$HELIX" inspect "$dir/does-not-exist.safetensors" >/dev/null 2>&1; rc=$?
[ $rc -eq 3 ] && ok || bad "missing file: rc=$rc, want 3"

# key padding against PyTorch's own nn.MultiheadAttention(key_padding_mask=...)
if with_torch "$dir/torch.log" "$(dirname "$0")/io/torch_mha.py" "$dir" 4 32 40 40,9,23; then
    for v in "pad:" "pad_causal:--causal"; do
        exp=${v%%:*}; extra=${v#*:}
        for mode in "--groups 2 --slices 2" "--groups 2 --slices 4 --exact-algo scores" "--groups 1 --slices 8"; do
            args=(--weights "$dir/mha.safetensors" --input "$dir/mha_x.npy" --heads 4 --kv-len 40,9,23 $mode $extra)
            out=$("$HELIX" run "${args[@]}" --output "$dir/y.npy" 2>&1); rc=$?
            if [ $rc -eq 0 ] && grep -q PASS <<<"$out" && compare "$dir/y.npy" "$dir/mha_$exp.npy" 2e-5 "PyTorch float64"; then ok
            else bad "PyTorch key padding, helix run ${args[*]}: rc=$rc"; echo "$out" | tail -3 >&2; fi
        done
    done
fi

# every file through the parsers under ASan + UBSan
if out=$("$IO_ASAN" "$g"/* "$b"/* 2>&1); then ok; else bad "parsers under ASan/UBSan: $out"; fi
echo "$out" | tail -1

summary

#!/usr/bin/env bash
# test_golden.sh HELIX GOLDEN [--regen] — bitwise regression guard: every
# case of a matrix (helix run: sliced, exact by regather over heads and over
# queries, scores; f32/bf16/f16; causal; --kv-len; --no-out-proj; --bias;
# --weights; helix bench layouts: helix n x m, tp x pp, tp, pp, with and
# without --weights) writes its --output .npy, and the SHA-256 of that file
# must equal the one recorded in GOLDEN. The in-process cases run first;
# a subset runs again under mpirun -np 4 and -np 16 and must hash the same
# as in-process (bitwise equal across engines).
#
# The kernels run the portable path (HELIX_CPU_ISA=portable): plain C, the
# same bits on every x86-64, so the hashes do not depend on the CPU CI
# draws. --regen rewrites GOLDEN from the in-process runs: do that only for
# a change that alters numerics on purpose, and say so in its commit.
set -u
HELIX=$1; GOLDEN=$2; REGEN=${3:-}
PY=${HELIX_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/mpi_env.sh"
. "$HERE/harness.sh"
export HELIX_CPU_ISA=portable
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# weight files: a fixed NumPy generator, so the same bytes everywhere
PYTHONPATH="$HERE/io" "$PY" - "$tmp" <<'EOF_PY' || { echo "cannot write the weight files" >&2; exit 1; }
import sys
import numpy as np
from st_util import st_bytes
out = sys.argv[1]
rng = np.random.default_rng(2026)
D, F = 128, 256
u = lambda *s: (rng.random(s, dtype=np.float32) * 2 - 1) / np.float32(np.sqrt(s[-1]))
# nn.MultiheadAttention, PyTorch convention (y = x W^T + b)
att = [("in_proj_weight", "F32", u(3 * D, D)), ("in_proj_bias", "F32", u(3 * D)),
       ("out_proj.weight", "F32", u(D, D)), ("out_proj.bias", "F32", u(D))]
open(f"{out}/attn.safetensors", "wb").write(st_bytes(att))
# two nn.TransformerEncoderLayer blocks
mod = []
for i in range(2):
    p = f"layers.{i}."
    mod += [(p + "norm1.weight", "F32", 1 + u(D)), (p + "norm1.bias", "F32", u(D)),
            (p + "self_attn.in_proj_weight", "F32", u(3 * D, D)), (p + "self_attn.in_proj_bias", "F32", u(3 * D)),
            (p + "self_attn.out_proj.weight", "F32", u(D, D)), (p + "self_attn.out_proj.bias", "F32", u(D)),
            (p + "norm2.weight", "F32", 1 + u(D)), (p + "norm2.bias", "F32", u(D)),
            (p + "linear1.weight", "F32", u(F, D)), (p + "linear1.bias", "F32", u(F)),
            (p + "linear2.weight", "F32", u(D, F)), (p + "linear2.bias", "F32", u(D))]
open(f"{out}/model.safetensors", "wb").write(st_bytes(mod, meta={"num_heads": "8", "norm": "pre", "activation": "gelu"}))
EOF_PY

R="--heads 8 --head-dim 16 --groups 2 --slices 2 --batch 2 --seq 24 --seed 5 --no-check"
R16="--heads 16 --head-dim 16 --groups 4 --slices 4 --batch 2 --seq 20 --seed 6 --no-check"
L="--quick --layers 2 --seq 24 --seed 5 --no-check"
W="$tmp/attn.safetensors"; M="$tmp/model.safetensors"
# name | command (after `helix`) | P (0: in-process only)
cases=(
"run-sliced-f32|run $R --mode sliced|4"
"run-heads-f32|run $R --mode exact|4"
"run-queries-f32|run $R --heads 6 --mode exact|4"
"run-scores-f32|run $R --mode exact --exact-algo scores|4"
"run-sliced-bf16|run $R --mode sliced --dtype bf16|0"
"run-heads-bf16|run $R --mode exact --dtype bf16|4"
"run-scores-f16|run $R --mode exact --exact-algo scores --dtype f16|0"
"run-queries-f16|run $R --heads 6 --mode exact --dtype f16|0"
"run-heads-causal|run $R --mode exact --causal|0"
"run-queries-causal-bf16|run $R --heads 6 --mode exact --causal --dtype bf16|0"
"run-scores-causal|run $R --mode exact --exact-algo scores --causal|0"
"run-sliced-causal-f16|run $R --mode sliced --causal --dtype f16|0"
"run-kvlen-heads|run $R --mode exact --kv-len 17,24|4"
"run-kvlen-scores-causal|run $R --mode exact --exact-algo scores --kv-len 9 --causal|0"
"run-kvlen-sliced|run $R --mode sliced --kv-len 3,20|0"
"run-noout-sliced|run $R --mode sliced --no-out-proj|4"
"run-noout-queries|run $R --heads 6 --mode exact --no-out-proj|0"
"run-bias-heads|run $R --mode exact --bias|0"
"run-bias-scores-bf16|run $R --mode exact --exact-algo scores --bias --dtype bf16|0"
"run-weights-heads|run --weights $W --heads 8 --groups 2 --slices 2 --batch 2 --seq 24 --seed 5 --no-check --mode exact|4"
"run-weights-sliced-noout|run --weights $W --heads 8 --groups 4 --slices 2 --batch 1 --seq 16 --seed 5 --no-check --mode sliced --dtype bf16|0"
"run16-queries|run $R16 --heads 8 --mode exact|16"
"run16-heads-causal|run $R16 --mode exact --causal|16"
"run16-sliced-bf16|run $R16 --mode sliced --dtype bf16|0"
"layers-helix-sliced|bench layouts $L --devices 4 --layouts helix2x2-sliced|4"
"layers-helix-exact|bench layouts $L --devices 4 --layouts helix2x2-exact|4"
"layers-helix-scores|bench layouts $L --devices 4 --layouts helix2x2-exact-scores|0"
"layers-tp2pp2|bench layouts $L --devices 4 --layouts tp2pp2|4"
"layers-tp4|bench layouts $L --devices 4 --layouts tp4|4"
"layers-pp4|bench layouts $L --devices 4 --layouts pp4 --layers 4|4"
"layers-tp2pp2-bf16-causal-bias|bench layouts $L --devices 4 --layouts tp2pp2 --dtype bf16 --causal --bias --microbatches 2|0"
"layers-helix-exact-f16-post|bench layouts $L --devices 4 --layouts helix2x2-exact --dtype f16 --norm post --activation relu|0"
"layers-helix4x1-tanh|bench layouts $L --devices 4 --layouts helix4x1-sliced --activation gelu-tanh --bias|0"
"layers16-helix4x4-exact|bench layouts $L --heads 16 --devices 16 --layouts helix4x4-exact|16"
"layers16-tp8pp2|bench layouts $L --heads 16 --devices 16 --layouts tp8pp2 --microbatches 2|16"
"layers16-tp4pp4|bench layouts $L --heads 16 --devices 16 --layouts tp4pp4 --layers 4|0"
"layers-weights-helix|bench layouts --weights $M --devices 4 --layouts helix2x2-exact --batch 2 --seq 24 --seed 5 --no-check|4"
"layers-weights-tp2pp2|bench layouts --weights $M --devices 4 --layouts tp2pp2 --batch 2 --seq 24 --seed 5 --no-check|4"
"layers-weights-pp4-bf16|bench layouts --weights $M --devices 2 --layouts pp2 --dtype bf16 --batch 2 --seq 24 --seed 5 --no-check|0"
)

hash_of() { sha256sum "$1" | cut -d' ' -f1; }
run_one() {   # $1: launcher, $2: command, $3: output file; prints nothing, returns rc
    local launch=$1 cmd=$2 outf=$3 be=""
    [ -n "$launch" ] && be="--backend mpi"
    # shellcheck disable=SC2086
    $launch "$HELIX" $cmd $be --output "$outf" >"$tmp/log" 2>&1 </dev/null
}

declare -A want got
if [ "$REGEN" != "--regen" ]; then
    [ -f "$GOLDEN" ] || { echo "no golden file $GOLDEN (make it with --regen)" >&2; exit 1; }
    while read -r h n; do [ -n "${n:-}" ] && [ "${h:0:1}" != "#" ] && want[$n]=$h; done <"$GOLDEN"
fi

for c in "${cases[@]}"; do
    IFS='|' read -r name cmd np <<<"$c"
    if ! run_one "" "$cmd" "$tmp/$name.npy"; then
        bad "$name: helix $cmd failed"; tail -3 "$tmp/log" >&2; continue
    fi
    got[$name]=$(hash_of "$tmp/$name.npy")
    if [ "$REGEN" = "--regen" ]; then ok
    elif [ "${want[$name]:-}" = "${got[$name]}" ]; then ok
    else bad "$name: sha256 ${got[$name]} != golden ${want[$name]:-none} (helix $cmd)"; fi
done

if [ "$REGEN" = "--regen" ]; then
    { echo "# sha256 of --output, HELIX_CPU_ISA=portable: tests/test_golden.sh regenerates it with --regen"
      for c in "${cases[@]}"; do n=${c%%|*}; [ -n "${got[$n]:-}" ] && echo "${got[$n]} $n"; done; } >"$GOLDEN.tmp" &&
        mv "$GOLDEN.tmp" "$GOLDEN" && echo "wrote $GOLDEN" >&2
fi

# the same bits from MPI ranks
if command -v mpirun >/dev/null && "$HELIX" run --help | grep -q -- '--backend'; then
    for c in "${cases[@]}"; do
        IFS='|' read -r name cmd np <<<"$c"
        [ "$np" = 0 ] && continue
        [ -n "${got[$name]:-}" ] || continue
        if ! run_one "mpirun -np $np" "$cmd" "$tmp/$name.mpi.npy"; then
            bad "$name: mpirun -np $np helix $cmd failed"; tail -3 "$tmp/log" >&2; continue
        fi
        h=$(hash_of "$tmp/$name.mpi.npy")
        [ "$h" = "${got[$name]}" ] && ok || bad "$name: mpirun -np $np gives sha256 $h, in-process ${got[$name]}"
    done
fi
summary

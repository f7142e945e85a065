#!/usr/bin/env bash
# test_defects.sh HELIX — the defects found trying helix as a new user and
# as a hostile tester (issue 13), one check (or a few) per defect: each
# failed before its fix. Silently wrong results, hangs, half-written files,
# work done before a refusal, wrong messages.
set -u
HELIX=$1
PY=${HELIX_PYTHON:-/usr/bin/python3}
here=$(dirname "$0")
. "$here/harness.sh"
. "$here/mpi_env.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# want RC MESSAGE CMD...: exit status RC and MESSAGE in the output, within $WT s (60)
want() {
    local rc=$1 msg=$2; shift 2
    out=$(timeout "${WT:-60}" "$@" 2>&1 </dev/null); got=$?
    if [ $got -eq "$rc" ] && grep -qF -- "$msg" <<<"$out"; then ok
    else bad "$*: rc=$got (want $rc and '$msg'); output: $(tail -3 <<<"$out")"; fi
}

echo "anything that is not a regular file is refused before it is opened (a FIFO never blocks):"
mkfifo "$T/fifo"
want 2 "a FIFO, not a regular file" "$HELIX" run --input "$T/fifo"
want 2 "a FIFO, not a regular file" "$HELIX" run --weights "$T/fifo" --heads 2
want 2 "a FIFO, not a regular file" "$HELIX" inspect "$T/fifo"
want 2 "a FIFO, not a regular file" "$HELIX" plan --hardware "$T/fifo"
want 2 "a FIFO, not a regular file" "$HELIX" bench layouts --weights "$T/fifo" --heads 2
want 2 "a FIFO, not a regular file" "$HELIX" bench layouts --input "$T/fifo" --quick
want 2 "a directory, not a regular file" "$HELIX" run --input "$T"

"$PY" "$here/io/defect_files.py" "$T" || { bad "defect_files.py failed"; summary; exit 1; }

echo "what a checkpoint does not record is never guessed:"
want 2 "does not record its head count (no __metadata__ \"num_heads\")" "$HELIX" run --weights "$T/f16_overflow.safetensors"
want 0 "8 heads of width 4" "$HELIX" run --weights "$T/meta8.safetensors" --groups 2 --slices 2 --seq 16
want 2 "--heads 4, but $T/meta8.safetensors records num_heads = \"8\"" "$HELIX" run --weights "$T/meta8.safetensors" --heads 4
want 2 "__metadata__ num_heads expects an integer, got 'eight'" "$HELIX" run --weights "$T/meta_bad.safetensors"
if with_torch "$T/torch.log" "$here/io/torch_mha.py" "$T" 8 64 24 24,11; then
    # an 8-head nn.MultiheadAttention: without --heads refused; with --heads 8 equal to PyTorch
    want 2 "give --heads H" "$HELIX" run --weights "$T/mha.safetensors" --input "$T/mha_x.npy"
    for lay in "--groups 2 --slices 2" "--groups 8 --slices 1" "--groups 1 --slices 4 --exact-algo scores"; do
        "$HELIX" run --weights "$T/mha.safetensors" --input "$T/mha_x.npy" --heads 8 --kv-len 24,11 $lay \
            --output "$T/y.npy" >/dev/null 2>&1
        err=$("$PY" -c "import numpy as np,sys; y=np.load(sys.argv[1]).astype(float); e=np.load(sys.argv[2]).astype(float); print(abs(y-e).max()/abs(e).max())" "$T/y.npy" "$T/mha_pad.npy")
        if "$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1e-5 else 1)" "$err"; then ok; else bad "8-head MHA $lay: $err"; fi
        rm -f "$T/y.npy"
    done
fi

echo "no exit 0 with a non-finite output; values the storage type cannot hold are refused:"
want 2 "--scale must be > 0 and at most 1e6" "$HELIX" run --scale 1e39 --no-check --output "$T/y.npy"
want 2 "value 70000 at [0, 3, 5] overflows f16" "$HELIX" run --input "$T/x16.npy" --heads 4 --head-dim 8 --dtype f16 --no-check
want 2 "value 70000 at [0, 3, 5] overflows f16" "$HELIX" run --input "$T/x16.npy" --heads 4 --head-dim 8 --dtype f16
want 2 "tensor 'q_proj.weight' value 70000 at [3, 5] overflows f16" "$HELIX" run --weights "$T/f16_overflow.safetensors" --heads 4 --dtype f16
want 1 "non-finite values (the first at" "$HELIX" run --input "$T/xhuge.npy" --heads 4 --head-dim 8 --groups 2 --slices 2 --no-check --output "$T/y.npy"
[ -e "$T/y.npy" ] && bad "a non-finite output was written" || ok
want 0 "" "$HELIX" run --input "$T/xhuge.npy" --heads 4 --head-dim 8 --groups 2 --slices 2 --no-check --allow-nonfinite --output "$T/y.npy"
[ -s "$T/y.npy" ] && ok || bad "--allow-nonfinite did not write the output"
want 1 "non-finite values" "$HELIX" bench layouts --devices 4 --layouts tp4 --input "$T/xhuge.npy" --heads 4 --head-dim 8 --ffn 16 --layers 1 --norm post --no-check

echo "MPI ranks that open different files at the same path are refused:"
cp "$T/meta8.safetensors" "$T/a.safetensors"
"$PY" - "$T/meta8.safetensors" "$T/b.safetensors" <<'EOF_PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[-5] ^= 0x40     # the same header, one weight differs
open(sys.argv[2], "wb").write(b)
EOF_PY
want 2 "ranks 1 2 3 read a different" timeout 60 mpirun -np 1 "$HELIX" run --groups 2 --slices 2 --seq 16 --weights "$T/a.safetensors" : \
    -np 3 "$HELIX" run --groups 2 --slices 2 --seq 16 --weights "$T/b.safetensors"
want 0 "PASS" timeout 60 mpirun -np 4 "$HELIX" run --groups 2 --slices 2 --seq 16 --weights "$T/a.safetensors"

echo "a stalled MPI rank ends the job, naming it (the collective watchdog):"
t0=$(date +%s)
want 3 "rank 2 did not arrive" env HELIX_TEST_STALL_RANK=2 timeout 60 mpirun -np 4 "$HELIX" run --groups 2 --slices 2 --seq 64 --timeout 3
echo "  ended after $(( $(date +%s) - t0 )) s"
want 2 "HELIX_TEST_FAIL_RANK must be a rank number, got ''" env HELIX_TEST_FAIL_RANK= timeout 60 mpirun -np 4 "$HELIX" run --groups 2 --slices 2 --seq 16
want 2 "HELIX_TEST_FAIL_RANK must be a rank number, got 'x'" env HELIX_TEST_FAIL_RANK=x "$HELIX" run --seq 16
want 2 "--timeout must be between 0 (never) and 1e7 seconds" "$HELIX" run --timeout -1

echo "the reader's name index and offsets:"
# a 100 002-tensor model: inspected (every tensor's role) and loaded in seconds, not minutes
t0=$(date +%s.%N)
want 0 "whole model (helix bench layouts --weights): 16667 layers" timeout 60 "$HELIX" inspect "$T/big.safetensors"
echo "  helix inspect of 100 002 tensors: $(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo '?') s"
want 0 "layers=1 " timeout 60 "$HELIX" bench layouts --devices 2 --layouts tp2 --weights "$T/big.safetensors" --heads 2 \
    --norm pre --activation gelu --layers 1 --batch 1 --seq 4
out=$("$HELIX" inspect "$T/empty_after.safetensors" 2>&1)
grep -q "overlap" <<<"$out" && bad "an empty tensor after one with the same begin was called overlapping: $out" || ok
want 2 "the file has 'in_proj_weight': try --weights-prefix ''" "$HELIX" run --weights "$T/a.safetensors" --heads 8 --weights-prefix x.
want 2 "no attention weights found" "$HELIX" inspect "$T/empty_after.safetensors"

echo "refusals come from headers and sizes, before anything large is read or allocated:"
want 2 "" timeout 20 "$HELIX" run --weights "$T/sparse.safetensors" --heads 256 --batch 1 --seq 1
want 2 "but the model needs [B, L, D=1024]" timeout 20 "$HELIX" run --input "$T/sparse.npy"
want 2 "" timeout 20 "$HELIX" run --batch 1073741824 --kv-len 5
want 2 "" timeout 20 "$HELIX" run --batch 1099511627776 --kv-len 5
want 2 "is too large" "$HELIX" run --heads 1099511627776 --head-dim 1099511627776 --input "$T/x32.npy"
want 2 "" "$HELIX" bench layouts --batch 1048576 --seq 16777216 --heads 512 --head-dim 512

echo "files are written whole or not at all; lost output is an error:"
"$HELIX" run --seq 16 --heads 4 --groups 2 --slices 2 --output "$T/old.npy" >/dev/null 2>&1
cp "$T/old.npy" "$T/keep.npy"
out=$(bash -c "ulimit -f 40; '$HELIX' run --seq 64 --heads 4 --head-dim 64 --groups 2 --slices 2 --output '$T/old.npy' --json '$T/r.json'" 2>&1); rc=$?
[ $rc -eq 3 ] && ok || bad "--output under a file-size limit: rc=$rc (want 3): $out"
cmp -s "$T/old.npy" "$T/keep.npy" && ok || bad "a failed --output destroyed the previous file"
ls "$T" | grep -q "tmp-" && bad "a temporary file was left behind: $(ls "$T")" || ok
grep -q '"written": false' "$T/r.json" && grep -q '"exit_code": 3' "$T/r.json" && ok || bad "the JSON does not record the failed output"
want 3 "write failed" "$HELIX" calibrate --seconds 0.02 --out /dev/full
"$HELIX" calibrate --seconds 0.02 --out "$T/m.hw" >/dev/null 2>&1; cp "$T/m.hw" "$T/m0.hw"
out=$(bash -c "ulimit -f 1; '$HELIX' calibrate --seconds 0.02 --out '$T/m.hw'" 2>&1); rc=$?
[ $rc -eq 3 ] && cmp -s "$T/m.hw" "$T/m0.hw" && ok || bad "calibrate --out under a 1 KiB file-size limit: rc=$rc, old file kept: $(cmp "$T/m.hw" "$T/m0.hw")"
want 3 "writing standard output failed" bash -c "'$HELIX' run --seq 16 --heads 4 --groups 2 --slices 2 >/dev/full"
for cmd in "run --seq 16 --heads 4 --groups 2 --slices 2" "bench kernels --quick --iters 1" \
           "bench layouts --quick --devices 4 --layouts tp4" "plan --devices 4 --heads 8"; do
    if "$HELIX" $cmd --json - 2>/dev/null | "$PY" -m json.tool >/dev/null; then ok; else bad "$cmd --json - is not JSON alone"; fi
done

echo "messages that say what is wrong:"
want 2 "tensor 'in_proj_weight' has shape [3] (1-D), expected a 2-D matrix [3*D, D]" "$HELIX" run --weights "$T/in_proj_1d.safetensors" --heads 1
want 2 "tensor 'in_proj_weight' has shape [0, 0] (2-D), expected a 2-D matrix [3*D, D] with D >= 1" "$HELIX" run --weights "$T/in_proj_00.safetensors" --heads 1
want 2 "--seconds must be > 0 and at most 60, got '0'" "$HELIX" calibrate --seconds 0
want 2 "--seconds must be > 0 and at most 60, got '-1'" "$HELIX" calibrate --seconds -1
want 2 "option --out needs a value" "$HELIX" calibrate --out
if [ -z "${OMPI_COMM_WORLD_SIZE:-}" ]; then
    want 2 "this process was not started by mpirun/mpiexec" env -u OMPI_COMM_WORLD_SIZE "$HELIX" run --backend mpi
    want 2 "this process was not started by mpirun/mpiexec" "$HELIX" bench layouts --backend mpi --quick
fi
out=$(timeout 60 mpirun -np 4 "$HELIX" run --backend inproc 2>&1); rc=$?
n=$(grep -c "would run the whole grid" <<<"$out")
[ $rc -ne 0 ] && [ "$n" -eq 1 ] && ok || bad "--backend inproc under mpirun: rc=$rc, refusal printed $n times"
want 2 "no layout is legal for h=16 d=64, 2 layers on 12 devices" "$HELIX" plan --devices 12 --heads 16
out=$("$HELIX" plan --devices 16 2>&1)
grep -q "GiB\|MiB" <<<"$out" && bad "helix plan mixes GiB and GB" || ok
"$HELIX" plan --devices 4 --heads 8 --layouts "$(printf 'tp4,\xff,%s' "$(printf 'é%.0s' $(seq 40))")" --json "$T/p.json" >/dev/null 2>&1
"$PY" -c "import json,sys; json.load(open(sys.argv[1], encoding='utf-8'))" "$T/p.json" && ok || bad "plan --json with odd layout names is not valid UTF-8 JSON"
for cmd in run inspect calibrate plan "bench kernels" "bench layouts"; do
    "$HELIX" $cmd -h 2>&1 | grep -q "^usage: helix" && ok || bad "helix $cmd -h"
done

echo "defaults that work:"
t0=$(date +%s)
WT=600 want 0 "# fastest:" "$HELIX" bench layouts
echo "  helix bench layouts with no options: $(( $(date +%s) - t0 )) s"
want 2 "--layouts: tp4pp4 is not valid here" "$HELIX" bench layouts --layouts tp16,tp4pp4
want 2 "nothing was run" "$HELIX" bench layouts --layouts tp16,helix3x3-exact

echo "installed: binary, library, headers, pkg-config and CMake files:"
if cmake --install "$(dirname "$HELIX")" --prefix "$T/inst" >/dev/null 2>&1; then
    for f in bin/helix lib/libhelix.a include/helix.h include/helix_io.h lib/pkgconfig/helix.pc \
             lib/cmake/helix/helixConfig.cmake share/helix/hw/h100-dgx.hw; do
        [ -e "$T/inst/$f" ] && ok || bad "cmake --install did not install $f"
    done
    if ! command -v pkg-config >/dev/null; then echo "  SKIPPED: no pkg-config to build a program against helix.pc"
    else
    printf '#include "helix.h"\n#include <stdio.h>\nint main(void){helix_config c=helix_config_default();printf("%%lld\\n",(long long)c.heads);return 0;}\n' >"$T/u.c"
    if cc "$T/u.c" -o "$T/u" $(PKG_CONFIG_PATH="$T/inst/lib/pkgconfig" pkg-config --cflags --libs --static helix) 2>"$T/cc.log" &&
       [ "$("$T/u")" = 16 ]; then ok; else bad "a program built with pkg-config helix: $(head -3 "$T/cc.log")"; fi
    fi
    "$T/inst/bin/helix" plan --devices 4 --heads 8 >/dev/null 2>&1 && ok || bad "the installed helix does not find its hardware files"
else
    bad "cmake --install failed"
fi

summary

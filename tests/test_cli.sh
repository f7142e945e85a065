#!/usr/bin/env bash
# test_cli.sh HELIX README — the command-line contract: runs that must pass,
# bad input that must exit 2 with a specific message, the JSON summary, and
# --help against the README.
set -u
HELIX=$1
README=$2
PY=${HELIX_PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/harness.sh"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

# runs that must exit 0 with PASS
while read -r args; do
    out=$("$HELIX" run $args 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -q "PASS" <<<"$out" && grep -q "bytes: match" <<<"$out"; then ok
    else bad "helix run $args: rc=$rc"; echo "$out" | tail -3 >&2; fi
done <<'EOF_RUNS'

--mode sliced --check
--causal
--dtype bf16
--dtype f16
--exact-algo scores
--exact-algo scores --causal --dtype bf16 --no-out-proj
--groups 2 --slices 8 --heads 8 --seq 100 --bias
--groups 1 --slices 1 --seq 64 --threads 1
--mode sliced --causal --dtype f16 --no-out-proj --scale 0.3
--batch 3 --kv-len 100,7,512 --causal
--batch 2 --kv-len 1,300 --exact-algo scores --seq 300
--batch 2 --kv-len 33 --mode sliced --dtype bf16
--batch 2 --kv-len 60,1 --groups 2 --slices 8 --heads 8 --seq 100 --causal
EOF_RUNS

# key padding reaches the devices (not only the reference): the output of
# --kv-len L equals no padding bit for bit, and a shorter one changes it
"$HELIX" run --seq 80 --output "$TMP/kv_none.npy" >/dev/null 2>&1
"$HELIX" run --seq 80 --kv-len 80 --output "$TMP/kv_full.npy" >/dev/null 2>&1
"$HELIX" run --seq 80 --kv-len 80,50 --output "$TMP/kv_short.npy" >/dev/null 2>&1
if cmp -s "$TMP/kv_none.npy" "$TMP/kv_full.npy"; then ok; else bad "--kv-len L changed the output"; fi
if [ -s "$TMP/kv_short.npy" ] && ! cmp -s "$TMP/kv_none.npy" "$TMP/kv_short.npy"; then ok
else bad "--kv-len 80,50 left the output as it was"; fi

# bad input: exit 2 and a message naming the problem
check_bad() {
    local want=$1; shift
    out=$("$HELIX" "$@" 2>&1); rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$want" <<<"$out"; then ok
    else bad "helix $*: rc=$rc (want 2), output: $out"; fi
}
check_bad "heads h=16 is not divisible by groups n=3" run --groups 3
check_bad "head width d=64 is not divisible by slices m=5" run --slices 5
check_bad "--heads must be in [1," run --heads 0
check_bad "--seq must be in [1," run --seq -5
check_bad "--batch must be in [1," run --batch 0
check_bad "--heads expects an integer, got 'abc'" run --heads abc
check_bad "--head-dim expects an integer, got '64x'" run --head-dim 64x
check_bad "--mode must be sliced or exact, got 'foo'" run --mode foo
check_bad "--exact-algo must be regather or scores, got 'x'" run --exact-algo x
check_bad "--dtype must be f32, f16 or bf16 (or fp32, fp16), got 'f64'" run --dtype f64
check_bad "--scale must be > 0" run --scale -1
check_bad "--scale expects a finite number, got 'nan'" run --scale nan
check_bad "too large" run --batch 1000000 --seq 100000000
check_bad "of memory" run --batch 512 --seq 65536
check_bad "unknown option '--frobnicate'" run --frobnicate
check_bad "--backend must be inproc or mpi, got 'gpu'" run --backend gpu
check_bad "--overhead times the CPU kernels; it does not go with --virtual-devices" run --virtual-devices --overhead
check_bad "--virtual-devices runs every device in one process" bench layouts --quick --virtual-devices --backend mpi
check_bad "needs a value" run --heads
check_bad "unexpected argument 'extra'" run extra
check_bad "unknown command 'fly'" fly
check_bad "--kv-len must be in [1," run --kv-len 0
check_bad "key padding length of batch row 1 (--kv-len) is 600; it must be in 1..L=512" run --kv-len 5,600
check_bad "--kv-len gives 3 lengths but the batch has B=2 rows" run --kv-len 3,4,5
check_bad "--kv-len must be a comma-separated list of lengths, got '3,,4'" run --kv-len 3,,4
check_bad "--kv-len expects an integer, got 'x'" run --kv-len x

# JSON summary
json=$("$HELIX" run --seq 96 --json - 2>/dev/null | sed -n '/^{/,$p')
if "$PY" - "$json" <<'EOF_PY'
import json, sys
j = json.loads(sys.argv[1])
assert j["config"]["heads"] == 16 and j["config"]["seq"] == 96
c = j["check"]
assert c["passed"] is True and c["max_abs_err"] >= 0 and c["max_rel_err"] < 1e-4
assert j["time_s"] > 0
ranks = j["comm"]["per_rank"]
assert len(ranks) == 16
for r in ranks:
    assert r["sent_bytes"] == sum(p["predicted_sent_bytes"] for p in r["phases"].values())
    assert r["recv_bytes"] == sum(p["predicted_recv_bytes"] for p in r["phases"].values())
assert sum(r["sent_bytes"] for r in ranks) == sum(r["recv_bytes"] for r in ranks)
assert len(j["memory"]["per_device_peak_bytes"]) == 16
assert all(b > 0 for b in j["memory"]["per_device_peak_bytes"])
EOF_PY
then ok; else bad "--json summary"; fi
tmp=$(mktemp)
if "$HELIX" run --seq 64 --json "$tmp" >/dev/null && "$PY" -c "import json,sys; json.load(open(sys.argv[1]))" "$tmp"; then ok
else bad "--json FILE"; fi
rm -f "$tmp"

# --help lists every option, and the README shows the same text
help=$("$HELIX" run --help); rc=$?
[ $rc -eq 0 ] && ok || bad "run --help exit $rc"
for opt in --heads --head-dim --groups --slices --batch --seq --mode --exact-algo --causal --scale --kv-len \
           --no-out-proj --bias --dtype --seed --backend --threads --check --no-check --output --json --help; do
    grep -qE -- "^ +(-[a-z], )?$opt( |$)" <<<"$help" && ok || bad "--help lacks $opt"
done
help_in_readme "$help" "$README" "helix run --help"

# --overhead: the ratio is printed and in the JSON (its value is not asserted: timing)
tmp=$(mktemp)
out=$("$HELIX" run --seq 64 --overhead --json "$tmp" 2>/dev/null)
if grep -qE "^# overhead: [0-9.]+ s wall / [0-9.]+ s for the same kernels alone .* = [0-9.]+$" <<<"$out" &&
   "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['overhead_ratio'] > 0 and d['kernels_alone_s'] > 0 else 1)" "$tmp"
then ok; else bad "--overhead: $out"; fi
rm -f "$tmp"
# exact/scores too: its program's compute steps (scores halves) run alone
out=$("$HELIX" run --seq 64 --overhead --exact-algo scores 2>/dev/null)
grep -qE "^# overhead: [0-9.]+ s wall / [0-9.]+ s for the same kernels alone .* = [0-9.]+$" <<<"$out" && ok || bad "--overhead with scores: $out"

# the GPU path is compiled and linked wherever the CUDA toolkit is installed
# (CI has it under /usr/local/cuda, without a GPU); without a GPU it says so
ver=$("$HELIX" version)
if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null; then
    grep -q "gpu path: module .*libhelix-cuda.so (CUDA " <<<"$ver" && ok || bad "nvcc is installed but the GPU module was not built: $ver"
    # the module is loaded only when used: helix version (and every CPU run) maps nothing of CUDA
    rss=$("$PY" -c 'import resource, subprocess, sys
subprocess.run([sys.argv[1], "version"], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$HELIX")
    [ "${rss:-99999}" -lt 32768 ] && ok || bad "helix version peak RSS ${rss} KiB with the GPU module present (want < 32 MiB)"
    echo "# helix version: peak RSS ${rss} KiB with the GPU module present"
    if ldd "$HELIX" | grep -qE 'libcudart|libcublas|libnccl'; then bad "the helix binary links CUDA libraries"; else ok; fi
    out=$("$HELIX" version --gpu 2>&1)
    grep -qE "gpu path: (module .* loads|not loadable: )" <<<"$out" && ok || bad "helix version --gpu: $out"
    # scripts/gpu-check.sh: on a machine without a GPU it says so and exits 77, building nothing
    if nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
        echo "  (a GPU is here: run scripts/gpu-check.sh OUTDIR by hand; ctest does not)"
    else
        out=$("$(dirname "$README")/scripts/gpu-check.sh" "$TMP/gpu-check" 2>&1); rc=$?
        [ $rc -eq 77 ] && grep -q "no GPU on this machine" <<<"$out" && ok || bad "gpu-check.sh without a GPU: rc=$rc: $out"
    fi
    out=$(HELIX_CUDA_MODULE=/nonexistent.so "$HELIX" bench kernels --backend cuda --quick 2>&1); rc=$?
    [ $rc -eq 2 ] && grep -q "HELIX_CUDA_MODULE=/nonexistent.so: no such file" <<<"$out" && ok || bad "missing module: rc=$rc: $out"
    out=$("$HELIX" bench kernels --backend cuda --quick 2>&1); rc=$?
    if [ $rc -eq 0 ] || { [ $rc -eq 2 ] && grep -q "no usable CUDA device\|no CUDA device" <<<"$out"; }; then ok
    else bad "bench kernels --backend cuda: rc=$rc: $out"; fi
    # whole layouts on one GPU: without one, refused with the reason (exit 2), nothing half-printed
    if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
        out=$("$HELIX" run --virtual-devices 2>&1); rc=$?
        [ $rc -eq 2 ] && grep -q "virtual-devices needs a GPU: no usable CUDA device\|virtual-devices needs a GPU: no GPU module" <<<"$out" && ! grep -q '^# helix' <<<"$out" && ok \
            || bad "run --virtual-devices without a GPU: rc=$rc: $out"
        out=$("$HELIX" bench layouts --quick --devices 4 --virtual-devices 2>&1); rc=$?
        [ $rc -eq 2 ] && grep -q "virtual-devices needs a GPU" <<<"$out" && ! grep -q '^# layout' <<<"$out" && ok \
            || bad "bench layouts --virtual-devices without a GPU: rc=$rc: $out"
    fi
else
    echo "  (no CUDA toolkit here: the GPU build is not checked)"
fi

summary

#!/usr/bin/env bash
# gpu-check.sh OUTDIR — every GPU check of helix in one command, for a
# machine with an NVIDIA GPU (sized for a 16-core H100/H200 box: under 10
# minutes, every step under `timeout`). Prints the GPU, driver and toolkit;
# builds helix with the GPU module into build-gpu/; runs the GPU tests,
# compute-sanitizer memcheck on the kernel tests (small shapes), `helix
# bench kernels --backend cuda`, and whole layouts as virtual devices on
# GPU 0 (`helix run --virtual-devices` 4x4 exact and sliced, `helix bench
# layouts --virtual-devices` helix4x4 / tp8pp2 ...) checked against the
# CPU reference; writes summary.txt and one log per step into OUTDIR.
# On a machine without a GPU it says so and exits 77 (nothing is built).
# Exit: 0 every step passed, 1 a step failed, 77 no GPU.
set -u
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
cd "$(dirname "$0")/.."
mkdir -p "$out" || exit 1
sum="$out/summary.txt"
: >"$sum"
say() { echo "$*" | tee -a "$sum"; }
failed=0
# step NAME SECONDS CMD...: run under timeout, log to OUTDIR/NAME.log, one summary line
step() {
    local name=$1 limit=$2 t0 rc
    shift 2
    t0=$(date +%s)
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || failed=1
    say "$(printf '  %-22s %-12s %4ss  %s' "$name" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")" "$(( $(date +%s) - t0 ))" "$name.log")"
    return $rc
}

if ! command -v nvidia-smi >/dev/null 2>&1; then
    say "gpu-check: no GPU on this machine (nvidia-smi is not installed): nothing to check"
    exit 77
fi
if ! timeout 30 nvidia-smi -L >"$out/nvidia-smi.log" 2>&1 || ! grep -q '^GPU ' "$out/nvidia-smi.log"; then
    say "gpu-check: no GPU on this machine (nvidia-smi -L: $(head -1 "$out/nvidia-smi.log"))"
    exit 77
fi
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
say "# helix gpu-check, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
say "# GPUs: $(nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader | tr '\n' ';')"
say "# toolkit: $("$nvcc" --version 2>/dev/null | tail -1)"
ngpu=$(grep -c '^GPU ' "$out/nvidia-smi.log")

step configure 120 cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release || { say "gpu-check: configure failed"; exit 1; }
step build 300 cmake --build build-gpu -j"$(nproc)" || { say "gpu-check: build failed"; exit 1; }
step version 30 build-gpu/helix version --gpu
grep "gpu path\|GPU " "$out/version.log" | sed 's/^/  /' | tee -a "$sum"
step test_cuda 300 build-gpu/tests/test_cuda
grep -E "passed|failed|SKIPPED" "$out/test_cuda.log" | tail -1 | sed 's/^/    /' | tee -a "$sum"
if grep -q '^SKIPPED' "$out/test_cuda.log"; then say "gpu-check: the GPU tests skipped on a machine with a GPU"; failed=1; fi
if [ "$ngpu" -ge 2 ] && [ -x build-gpu/tests/test_nccl ]; then
    step test_nccl 300 tests/test_nccl.sh build-gpu/tests/test_nccl
else
    say "  test_nccl              not run (needs 2 GPUs, has $ngpu)"
fi
if command -v compute-sanitizer >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
    cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    step memcheck 420 env HELIX_CUDA_TEST_SMALL=1 "$cs" --tool memcheck --error-exitcode 9 build-gpu/tests/test_cuda
else
    say "  memcheck               not run (compute-sanitizer not installed)"
fi
step bench_kernels 420 build-gpu/helix bench kernels --backend cuda --json "$out/bench_kernels.json"
grep -E '^  |^# peak|^# gpu' "$out/bench_kernels.log" | sed 's/^/    /' | tee -a "$sum"
# whole layouts on one GPU: every device of the layout a CUDA backend on GPU 0, checked against the CPU reference
step run_4x4_exact 240 build-gpu/helix run --virtual-devices --groups 4 --slices 4 --heads 16 --head-dim 128 \
    --seq 1024 --dtype bf16 --causal --mode exact --json "$out/run_4x4_exact.json"
grep -E '^# (devices|check|time)' "$out/run_4x4_exact.log" | head -4 | sed 's/^/    /' | tee -a "$sum"
step run_4x4_sliced 240 build-gpu/helix run --virtual-devices --groups 4 --slices 4 --heads 16 --head-dim 128 \
    --seq 1024 --dtype bf16 --mode sliced --json "$out/run_4x4_sliced.json"
grep -E '^# (devices|check|time)' "$out/run_4x4_sliced.log" | head -4 | sed 's/^/    /' | tee -a "$sum"
step layouts_16 420 build-gpu/helix bench layouts --virtual-devices --devices 16 \
    --layouts helix4x4-exact,helix4x4-sliced,tp8pp2,tp8pp2-sp,dp2-tp8 --heads 16 --head-dim 128 --ffn 2048 \
    --layers 2 --batch 2 --seq 512 --dtype bf16 --causal --json "$out/layouts_16.json"
grep -E '^  [a-z]|^# (devices|fastest)' "$out/layouts_16.log" | sed 's/^/    /' | tee -a "$sum"
# one GPU per MPI rank (the NCCL engine and the CUDA backend), where there are 4 GPUs and mpirun
if [ "$ngpu" -ge 4 ] && command -v mpirun >/dev/null 2>&1; then
    step run_gpu_np4 240 mpirun --allow-run-as-root --oversubscribe -np 4 build-gpu/helix run --gpu --groups 2 --slices 2 \
        --heads 16 --head-dim 128 --seq 1024 --dtype bf16 --causal --mode exact
    grep -E '^# (devices|check|time)' "$out/run_gpu_np4.log" | head -4 | sed 's/^/    /' | tee -a "$sum"
else
    say "  run_gpu_np4            not run (needs 4 GPUs and mpirun, has $ngpu GPUs)"
fi
say "# $( [ $failed -eq 0 ] && echo 'every step passed' || echo 'a step FAILED: see its log' ); logs in $out"
exit $failed

#!/usr/bin/env bash
# test_nccl.sh TEST_NCCL — the NCCL engine on 2 MPI ranks (one GPU each).
# Exit 77 (ctest: skipped) when the ranks say SKIPPED: no CUDA, no GPU, or
# fewer GPUs than ranks.
set -u
. "$(dirname "$0")/mpi_env.sh"
out=$(timeout 300 mpirun -np 2 "$1" 2>&1 </dev/null); rc=$?
echo "$out"
if grep -q "^SKIPPED" <<<"$out"; then exit 77; fi
exit $rc

#!/usr/bin/env bash
# test_nccl.sh TEST_NCCL — the NCCL engine on one MPI rank per GPU (2..8).
# Exit 77 (ctest: skipped) when the ranks say SKIPPED: no CUDA, no GPU, or
# fewer GPUs than ranks.
set -u
. "$(dirname "$0")/mpi_env.sh"
# one rank per GPU, 2 to 8 of them (the splits need 4 for halves of 2)
np=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
[ "${np:-0}" -ge 2 ] || np=2
[ "$np" -le 8 ] || np=8
out=$(timeout 300 mpirun -np "$np" "$1" 2>&1 </dev/null); rc=$?
echo "$out"
if grep -q "^SKIPPED" <<<"$out"; then exit 77; fi
exit $rc

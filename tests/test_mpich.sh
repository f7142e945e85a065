#!/usr/bin/env bash
# test_mpich.sh SRC BUILD — helix also builds against MPICH and runs at np=2,
# bitwise equal to the in-process grid.
set -u
SRC=$1; BUILD=$2
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
cmake -S "$SRC" -B "$BUILD" -DMPI_C_COMPILER=mpicc.mpich -DCMAKE_BUILD_TYPE=Release >"$BUILD.log" 2>&1 \
  && cmake --build "$BUILD" -j2 --target helix-cli >>"$BUILD.log" 2>&1 && ok || { bad "MPICH build (see $BUILD.log)"; }
if ldd "$BUILD/helix" | grep -q libmpich; then ok; else bad "the MPICH build does not link libmpich"; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for args in "--groups 2 --slices 1" "--groups 1 --slices 2 --causal --dtype bf16" "--groups 1 --slices 2 --exact-algo scores --dtype f16"; do
    out=$(timeout 120 mpiexec.mpich -n 2 "$BUILD/helix" run $args --seq 48 --output "$tmp/a.npy" 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -q "engine=mpi" <<<"$out" && grep -q PASS <<<"$out" && grep -q "bytes: match" <<<"$out"; then ok
    else bad "mpiexec.mpich -n 2 helix run $args: rc=$rc"; echo "$out" | tail -3 >&2; fi
    "$BUILD/helix" run --backend inproc $args --seq 48 --no-check --output "$tmp/b.npy" >/dev/null 2>&1
    cmp -s "$tmp/a.npy" "$tmp/b.npy" && ok || bad "MPICH $args: output differs from in-process"
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

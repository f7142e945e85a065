#!/usr/bin/env bash
# test_mpi.sh HELIX — the MPI engine: for every mode, dtype and causal
# setting at np = 1, 4 (2x2 and 1x4) and 16 (4x4), the MPI result passes
# --check, its counted bytes equal the plan, and its output is bitwise the
# in-process output. Then the two fault cases, with their time to exit.
set -u
HELIX=$1
. "$(dirname "$0")/mpi_env.sh"
PY=${HELIX_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

grids=("1 1 8" "2 2 8" "1 4 8" "4 4 8" "4 4 16")   # n m h: 4x4 h=8 regathers by queries, h=16 by heads
modes=("--mode sliced" "--exact-algo regather" "--exact-algo scores")
for g in "${grids[@]}"; do
    read -r n m h <<<"$g"
    np=$((n * m))
    for mode in "${modes[@]}"; do
        for dt in f32 f16 bf16; do
            for causal in "" "--causal"; do
                [ "$h" = 16 ] && [ "$mode" != "--exact-algo regather" ] && continue
                args="--groups $n --slices $m --heads $h --head-dim 16 --batch 2 --seq 40 $mode --dtype $dt $causal"
                out=$(mpirun -np $np "$HELIX" run --backend mpi $args --output "$tmp/mpi.npy" 2>&1); rc=$?
                if [ $rc -eq 0 ] && grep -q "engine=mpi" <<<"$out" && grep -q "PASS" <<<"$out" \
                   && grep -q "bytes: match" <<<"$out"; then ok
                else bad "mpirun -np $np helix run $args: rc=$rc"; echo "$out" | tail -5 >&2; continue; fi
                "$HELIX" run --backend inproc $args --no-check --output "$tmp/inproc.npy" >/dev/null 2>&1
                if cmp -s "$tmp/mpi.npy" "$tmp/inproc.npy"; then ok
                else bad "np=$np $args: MPI output differs from the in-process output"; fi
            done
        done
    done
done

# key padding over MPI: passes the check, bitwise the in-process output
for mode in "--mode sliced" "--exact-algo regather" "--exact-algo scores"; do
    args="--groups 2 --slices 2 --heads 4 --head-dim 16 --batch 3 --seq 40 $mode --causal --kv-len 40,5,23"
    out=$(mpirun -np 4 "$HELIX" run --backend mpi $args --output "$tmp/mpi.npy" 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -q "PASS" <<<"$out" && grep -q "key padding: keys seen per batch row 40 5 23" <<<"$out"
    then ok; else bad "mpirun -np 4 helix run $args: rc=$rc"; echo "$out" | tail -5 >&2; fi
    "$HELIX" run --backend inproc $args --no-check --output "$tmp/inproc.npy" >/dev/null 2>&1
    cmp -s "$tmp/mpi.npy" "$tmp/inproc.npy" && ok || bad "np=4 $args: MPI output differs from the in-process output"
done

# bytes per rank in the JSON equal the plan's, per phase
json=$(mpirun -np 4 "$HELIX" run --groups 2 --slices 2 --seq 70 --exact-algo scores --causal --json - 2>/dev/null \
       | sed -n '/^{/,$p')
if "$PY" - "$json" <<'EOF_PY'
import json, sys
j = json.loads(sys.argv[1])
assert j["config"]["engine"] == "mpi" and j["comm"]["matches_plan"]
for r in j["comm"]["per_rank"]:
    for name, p in r["phases"].items():
        assert p["sent_bytes"] == p["predicted_sent_bytes"], (r["rank"], name)
        assert p["recv_bytes"] == p["predicted_recv_bytes"], (r["rank"], name)
assert sum(r["phases"]["attention"]["sent_bytes"] for r in j["comm"]["per_rank"]) > 0
EOF_PY
then ok; else bad "MPI --json bytes vs plan"; fi

# two emulated nodes of 8 (--ranks-per-node 8): the hierarchical collectives
# give bitwise the in-process output, bytes per link equal the plan, and the
# flat (one node) output differs from them in the last bits only
# (with sequence parallel and data-parallel layouts: reduce-scatter, across
# both nodes hierarchical for tp16-sp, rows handed over, Y gathered over the
# replicas)
args="--quick --heads 16 --devices 16 --ranks-per-node 8 --layouts helix4x4-exact,tp8pp2,tp8pp2-sp,dp2-tp8,tp16-sp,helix2x8-sliced"
out=$(mpirun -np 16 "$HELIX" bench layouts --backend mpi $args --json "$tmp/mpi.json" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "# nodes: 2 nodes of 8 consecutive ranks" <<<"$out" && [ "$(grep -c '= plan |' <<<"$out")" -eq 6 ]
then ok; else bad "mpirun -np 16 helix bench layouts $args: rc=$rc"; echo "$out" | tail -8 >&2; fi
for lay in helix4x4-exact tp8pp2 tp8pp2-sp dp2-tp8 tp16-sp helix2x8-sliced; do
    a=${args/--layouts*/--layouts $lay}
    mpirun -np 16 "$HELIX" bench layouts --backend mpi $a --no-check --output "$tmp/mpi.npy" >/dev/null 2>&1
    "$HELIX" bench layouts --backend inproc $a --no-check --output "$tmp/inproc.npy" >/dev/null 2>&1
    cmp -s "$tmp/mpi.npy" "$tmp/inproc.npy" && ok || bad "$lay, 2 nodes of 8: MPI output differs from the in-process output"
done
# --collectives native: the MPI library's reductions, right (#wrong 0) and
# booked like the ordered ones (= plan), but not bitwise the ordered output
a=${args/--layouts*/--layouts helix4x4-exact,tp8pp2-sp}
out=$(mpirun -np 16 "$HELIX" bench layouts --backend mpi $a --dtype bf16 --collectives native --output "$tmp/native.npy" --json "$tmp/native.json" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "^# collectives: native (the engine's library: MPI_Allreduce" <<<"$out" && [ "$(grep -c '= plan |' <<<"$out")" -eq 2 ] \
   && "$PY" -c 'import json,sys; assert all(r["collectives"] == "native" and r["wrong"] == 0 for r in json.load(open(sys.argv[1]))["layouts"])' "$tmp/native.json"
then ok; else bad "--collectives native: rc=$rc"; echo "$out" | tail -5 >&2; fi
mpirun -np 16 "$HELIX" bench layouts --backend mpi ${a/,tp8pp2-sp/} --dtype bf16 --no-check --output "$tmp/ordered.npy" >/dev/null 2>&1
cmp -s "$tmp/native.npy" "$tmp/ordered.npy" && echo "# native and ordered bf16 outputs happen to be bitwise equal here" || ok

# helix run (one attention layer) at 2 emulated nodes of 8: hierarchical
# reduce onto rank 0, bitwise = in-process, bytes per link class = plan;
# and with the MPI library's own reductions
out=$(mpirun -np 16 "$HELIX" run --ranks-per-node 8 --seq 64 --output "$tmp/run_mpi.npy" --json "$tmp/run.json" 2>&1); rc=$?
"$HELIX" run --backend inproc --ranks-per-node 8 --seq 64 --no-check --output "$tmp/run_ip.npy" >/dev/null 2>&1
if [ $rc -eq 0 ] && grep -q "# nodes: 2 nodes of 8" <<<"$out" && grep -q "bytes: match" <<<"$out" && grep -q PASS <<<"$out" \
   && cmp -s "$tmp/run_mpi.npy" "$tmp/run_ip.npy" \
   && "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1]))["comm"]; assert j["ranks_per_node"] == 8 and j["collectives"] == "ordered" and j["matches_plan"]' "$tmp/run.json"
then ok; else bad "helix run --ranks-per-node 8: rc=$rc, or MPI differs from in-process"; echo "$out" | tail -4 >&2; fi
out=$(mpirun -np 16 "$HELIX" run --collectives native --seq 64 --dtype bf16 2>&1); rc=$?
[ $rc -eq 0 ] && grep -q "^# collectives: native" <<<"$out" && grep -q PASS <<<"$out" && grep -q "bytes: match" <<<"$out" && ok \
    || bad "helix run --collectives native: rc=$rc"

# X broadcast from rank 0 (to each replica, then its tensor group) instead of
# replicated: the same output, bitwise, and loading bytes where there were none
a=${args/--layouts*/--layouts dp2-tp4pp2-sp}
mpirun -np 16 "$HELIX" bench layouts --backend mpi $a --input-from rank0 --output "$tmp/mpi.npy" --json "$tmp/rank0.json" >/dev/null 2>&1
"$HELIX" bench layouts --backend inproc $a --no-check --output "$tmp/inproc.npy" >/dev/null 2>&1
cmp -s "$tmp/mpi.npy" "$tmp/inproc.npy" && ok || bad "dp2-tp4pp2-sp: X from rank 0 under MPI differs from replicated in-process"
"$PY" -c 'import json,sys; r=json.load(open(sys.argv[1]))["layouts"][0]; assert r["input_from_rank0"] and r["bytes_equal_plan"] and r["wrong"] == 0 and r["sent_bytes_per_rank_max"]["load"] > 0, r' "$tmp/rank0.json" \
    && ok || bad "dp2-tp4pp2-sp --input-from rank0: JSON"
if "$PY" - "$tmp/mpi.json" <<'EOF_PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ranks_per_node"] == 8
for r in j["layouts"]:
    assert r["bytes_equal_plan"] and r["wrong"] == 0, r["layout"]
    assert r["inter_node_bytes"] > 0, r["layout"]
EOF_PY
then ok; else bad "2 nodes of 8: JSON bytes per link / #wrong"; fi

# fault 1: -np does not match the grid -> every rank exits 2, one message, no hang
t0=$(date +%s%N)
out=$(timeout 60 mpirun -np 3 "$HELIX" run --seq 32 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
n_msgs=$(grep -c "^helix:" <<<"$out")
if [ $rc -eq 2 ] && [ "$n_msgs" -eq 1 ] && grep -q "mpirun started 3 ranks, but the grid n x m = 4 x 4 needs 16" <<<"$out"; then ok
else bad "np mismatch: rc=$rc, $n_msgs helix messages"; echo "$out" >&2; fi
if [ $ms -lt 10000 ]; then ok; else bad "np mismatch took $ms ms"; fi
echo "# np mismatch: exit $rc after $ms ms"

# fault 2: one rank fails while the others wait in a collective -> job ends non-zero quickly
t0=$(date +%s%N)
out=$(HELIX_TEST_FAIL_RANK=5 timeout 60 mpirun -np 16 "$HELIX" run --seq 32 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "helix: rank 5 failed: injected failure" <<<"$out"; then ok
else bad "rank failure: rc=$rc"; echo "$out" | head >&2; fi
if [ $ms -lt 10000 ]; then ok; else bad "rank failure took $ms ms to end the job"; fi
echo "# rank 5 failure: exit $rc after $ms ms"

# bad input under MPI: every rank exits 2, rank 0 alone explains
out=$(timeout 60 mpirun -np 4 "$HELIX" run --groups 3 2>&1); rc=$?
if [ $rc -eq 2 ] && [ "$(grep -c '^helix:' <<<"$out")" -eq 1 ]; then ok; else bad "bad config under MPI: rc=$rc"; fi

# --gpu (one GPU per rank, the NCCL engine) where there is no GPU: every rank
# says why (bench layouts: rank 0 speaks), the job ends at once with exit 2
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    for cmd in "run --groups 2 --slices 2" "bench layouts --quick --devices 4 --layouts tp4"; do
        t0=$(date +%s)
        out=$(timeout 60 mpirun -np 4 "$HELIX" $cmd --gpu 2>&1); rc=$?
        dt=$(( $(date +%s) - t0 ))
        if [ $rc -eq 2 ] && [ "$(grep -c -- '--gpu: ' <<<"$out")" -ge 1 ] && [ $dt -lt 15 ]; then ok
        else bad "mpirun -np 4 helix $cmd --gpu without a GPU: rc=$rc after ${dt}s: $(head -3 <<<"$out")"; fi
    done
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

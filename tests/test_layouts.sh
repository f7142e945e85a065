#!/usr/bin/env bash
# test_layouts.sh HELIX README — `helix bench layouts`: whole layers in
# every layout at P = 4 and P = 16, in-process and under MPI, must match
# the float64 reference (#wrong 0) with counted bytes and arenas equal to
# the plan; JSON parses; the plot is a PNG (when gnuplot is installed);
# bad layouts are refused; --help matches the README.
set -u
HELIX=$1; README=$2
PY=${HELIX_PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/mpi_env.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/harness.sh"

# every row ran, equals the plan, and has #wrong 0
rows_ok() {   # $1: output, $2: expected number of layouts
    local n_ok n_all
    n_all=$(grep -cE '^  (helix|tp|pp)' <<<"$1")
    n_ok=$(grep -E '^  (helix|tp|pp)' <<<"$1" | grep -F '= plan' | awk '$NF == 0' | wc -l)
    [ "$n_all" = "$2" ] && [ "$n_ok" = "$2" ]
}

run_case() {   # $1: expected rows, $2: launcher ('' or 'mpirun -np N'), rest: args
    local want=$1 launch=$2; shift 2
    out=$($launch "$HELIX" bench layouts "$@" 2>"$tmp/err" </dev/null); rc=$?
    if [ $rc -eq 0 ] && rows_ok "$out" "$want"; then ok
    else bad "${launch:+$launch }helix bench layouts $*: rc=$rc"; echo "$out" | tail -12 >&2; tail -3 "$tmp/err" >&2; fi
}

q="--quick"
run_case 6 "" $q --devices 4 --layers 4 --layouts helix2x2-sliced,helix2x2-exact,helix2x2-exact-scores,tp4,tp2pp2,pp4
run_case 4 "" $q --devices 4 --dtype bf16 --causal --bias --microbatches 2
run_case 3 "" $q --devices 4 --dtype f16 --layouts helix1x4-exact,helix4x1-sliced,tp1pp4 --layers 4
run_case 6 "" $q --devices 16 --heads 16 --layers 4 --microbatches 2 \
    --layouts helix4x4-sliced,helix4x4-exact,tp8pp2,tp16,tp4pp4,helix2x8-exact
if command -v mpirun >/dev/null && "$HELIX" run --help | grep -q -- '--backend'; then
    run_case 4 "mpirun -np 4" $q --backend mpi
    run_case 5 "mpirun -np 16" $q --backend mpi --heads 16 --layers 4 --microbatches 2
    run_case 2 "mpirun -np 4" $q --backend mpi --dtype bf16 --causal --layouts helix2x2-exact-scores,tp2pp2
    out=$(mpirun -np 4 "$HELIX" bench layouts $q --backend mpi --devices 8 2>&1 </dev/null); rc=$?
    [ $rc -eq 2 ] && grep -q "mpirun started 4 ranks" <<<"$out" && ok || bad "--devices 8 under mpirun -np 4: rc=$rc $out"
fi

# JSON: every layout's bytes equal the plan and nothing is wrong
"$HELIX" bench layouts $q --devices 4 --json "$tmp/l.json" >/dev/null 2>&1
if "$PY" - "$tmp/l.json" <<'EOF_PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["layouts"]
assert len(rows) == 4, rows
for r in rows:
    assert r["bytes_equal_plan"] and r["wrong"] == 0 and r["tokens_per_s"] > 0, r
    assert r["compute_s"] > 0 and r["sent_bytes_per_rank_max"]["allreduce"] > 0, r
assert any(r["sent_bytes_per_rank_max"]["p2p"] > 0 for r in rows)
EOF_PY
then ok; else bad "--json"; fi

# the plot
if command -v gnuplot >/dev/null; then
    if "$HELIX" bench layouts $q --devices 4 --plot "$tmp/l.png" >/dev/null 2>&1 && \
       [ "$(head -c 4 "$tmp/l.png" | od -An -c | tr -d ' ')" = "211PNG" ]; then ok; else bad "--plot"; fi
else
    echo "skipped: --plot (gnuplot not installed)"
fi

# refusals: a bad layout is a row that says why, and exit 2
check_bad() {  # $1: message, rest: args
    local msg=$1; shift
    out=$("$HELIX" bench layouts "$@" 2>&1); rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$msg" <<<"$out"; then ok
    else bad "bench layouts $*: want rc 2 and '$msg', got rc=$rc: $(tail -2 <<<"$out")"; fi
}
check_bad "needs t*p = 8 devices, but there are 4" $q --devices 4 --layouts tp8
check_bad "not divisible by tensor parallel t=3" $q --devices 3 --layouts tp3
check_bad "not divisible by micro-batches=3" $q --devices 4 --layouts tp2pp2 --microbatches 3
check_bad "cannot fill 4 pipeline stages" $q --devices 4 --layouts pp4
check_bad "unknown layout 'ring4'" $q --devices 4 --layouts ring4
check_bad "does not fit" --devices 4 --layouts tp4 --batch 64 --seq 65536 --no-check
check_bad "--dtype: unknown 'f64'" --dtype f64
check_bad "unknown option '--frobnicate'" --frobnicate

# --help lists every option, and the README shows the same text
help=$("$HELIX" bench layouts --help); rc=$?
[ $rc -eq 0 ] && ok || bad "bench layouts --help exit $rc"
help_in_readme "$help" "$README" "helix bench layouts --help"

summary

#!/usr/bin/env bash
# run.sh [SECONDS] — build both fuzz harnesses with clang's libFuzzer +
# ASan + UBSan and run each for at most SECONDS (default 60) on a seed
# corpus of good and malformed files from tests/io/make_files.py plus the
# inputs that once crashed (fuzz/regress/). Any crash fails.
# The test suite runs it reproducibly: a fixed seed and a fixed run count
# (HELIX_FUZZ_SEED=1, HELIX_FUZZ_RUNS=200000). To explore, give a new seed
# and no run limit:  HELIX_FUZZ_SEED=0 HELIX_FUZZ_RUNS=-1 fuzz/run.sh 600
# (seed 0 = libFuzzer picks one and prints it).
set -eu
secs=${1:-${HELIX_FUZZ_SECONDS:-60}}
seed=${HELIX_FUZZ_SEED:-1}
runs=${HELIX_FUZZ_RUNS:-200000}
src=$(cd "$(dirname "$0")/.." && pwd)
work=${HELIX_FUZZ_DIR:-$(mktemp -d)}
mkdir -p "$work"
CC=${CLANG:-clang}
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$src/include"
io="$src/src/io/npy.c $src/src/io/file.c $src/src/io/safetensors.c $src/src/io/weights.c $src/src/io/model_weights.c $src/src/io/seeded.c $src/src/plan/shard.c $src/src/core/rng.c $src/src/core/dtype.c $src/src/core/status.c $src/src/kernels/isa.c"
$CC $flags "$src/fuzz/fuzz_safetensors.c" $io -ljansson -lm -o "$work/fuzz_safetensors"
$CC $flags "$src/fuzz/fuzz_npy.c" $io -ljansson -lm -o "$work/fuzz_npy"
/usr/bin/python3 "$src/tests/io/make_files.py" "$work/files" >/dev/null
mkdir -p "$work/corpus_st" "$work/corpus_npy"
cp "$work"/files/*/*.safetensors "$work/corpus_st/"
cp "$work"/files/*/*.npy "$work/corpus_npy/"
cp "$src"/fuzz/regress/safetensors/* "$work/corpus_st/"
cp "$src"/fuzz/regress/npy/*.npy "$work/corpus_npy/" 2>/dev/null || true
pass=0; fail=0
for h in safetensors npy; do
    corpus=$work/corpus_st; [ $h = npy ] && corpus=$work/corpus_npy
    echo "# fuzz_$h: seed $seed, runs $runs, at most ${secs}s, on $(ls "$corpus" | wc -l) seeds"
    if "$work/fuzz_$h" -seed="$seed" -runs="$runs" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
           -artifact_prefix="$work/crash-$h-" "$corpus" >"$work/$h.log" 2>&1; then
        pass=$((pass + 1))
        grep -E "stat::number_of_executed_units|cov:" "$work/$h.log" | tail -2
    else
        fail=$((fail + 1))
        echo "FAIL: fuzz_$h found a crash (log: $work/$h.log)" >&2
        tail -30 "$work/$h.log" >&2
    fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

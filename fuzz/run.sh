#!/usr/bin/env bash
# run.sh [SECONDS] — build both fuzz harnesses with clang's libFuzzer +
# ASan + UBSan and run each for SECONDS (default 60) on a seed corpus of
# good and malformed files from tests/io/make_files.py. Any crash fails.
#   one line:  fuzz/run.sh 60
set -eu
secs=${1:-${HELIX_FUZZ_SECONDS:-60}}
src=$(cd "$(dirname "$0")/.." && pwd)
work=${HELIX_FUZZ_DIR:-$(mktemp -d)}
mkdir -p "$work"
CC=${CLANG:-clang}
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$src/include"
io="$src/src/io/npy.c $src/src/io/safetensors.c $src/src/io/weights.c $src/src/core/dtype.c $src/src/core/status.c"
$CC $flags "$src/fuzz/fuzz_safetensors.c" $io -ljansson -lm -o "$work/fuzz_safetensors"
$CC $flags "$src/fuzz/fuzz_npy.c" $io -ljansson -lm -o "$work/fuzz_npy"
/usr/bin/python3 "$src/tests/io/make_files.py" "$work/files" >/dev/null
mkdir -p "$work/corpus_st" "$work/corpus_npy"
cp "$work"/files/*/*.safetensors "$work/corpus_st/"
cp "$work"/files/*/*.npy "$work/corpus_npy/"
pass=0; fail=0
for h in safetensors npy; do
    corpus=$work/corpus_st; [ $h = npy ] && corpus=$work/corpus_npy
    echo "# fuzz_$h: ${secs}s on $(ls "$corpus" | wc -l) seeds"
    if "$work/fuzz_$h" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
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

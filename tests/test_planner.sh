#!/usr/bin/env bash
# test_planner.sh HELIX HWDIR — `helix plan`: the paper preset ranks the
# legal layouts and gives a verdict beside the paper's claim; a layout that
# does not fit says so with the memory it needs; bad hardware files are
# refused with their line; --validate finds predicted bytes = measured on
# every rank (its time error is reported, not asserted: no timed tests).
set -u
HELIX=$1; HW=$2
PY=${HELIX_PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/mpi_env.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/harness.sh"

out=$("$HELIX" plan --preset paper --hardware h100-dgx --devices 16 --json "$tmp/p.json" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "verdict (the paper's layouts): helix4x4-sliced" <<<"$out" && grep -q "paper's claim" <<<"$out" \
   && grep -qE '^ +[0-9]+ tp8pp2 ' <<<"$out" && grep -qE '^ +[0-9]+ helix4x4-exact ' <<<"$out" \
   && grep -q "^# sensitivity (helix4x4-sliced against tp8pp2" <<<"$out" && grep -q "^# best of all (this model, not sliced): dp16" <<<"$out" \
   && grep -E '^ +[0-9]+ helix4x4-sliced ' <<<"$out" | grep -q "(different model)"; then ok
else bad "plan --preset paper: rc=$rc"; echo "$out" | tail -8 >&2; fi
if "$PY" - "$tmp/p.json" <<'EOF_PY'
import json, sys
d = json.load(open(sys.argv[1]))
names = {r["layout"] for r in d["layouts"]}
assert {"helix4x4-sliced", "helix4x4-exact", "tp8pp2", "tp16"} <= names and "tp4pp4" not in names, names  # 2 layers: at most 2 stages
assert {"tp8pp2-sp", "dp2-tp8", "dp16", "helix4x4-exact-sp"} <= names, names   # sequence and data parallel are ranked
by = {r["layout"]: r for r in d["layouts"]}
for r in d["layouts"]:
    assert r["fits"] and r["tokens_per_s"] > 0 and r["mem_bytes_per_device"] > 0, r
    assert r["tokens_per_s_overlap"] >= r["tokens_per_s"] and r["load_s"] >= 0, r
    assert r["intra_link_busy_s"] >= 0 and r["inter_link_busy_s"] >= 0, r
    assert r["assumptions"]["input"] == "replicated" and 0 < r["assumptions"]["eff_gemm_qkv"] <= 1, r
    assert r["different_model"] == ("sliced" in r["layout"]), r
# loading is apart: helix (Y already on rank 0) loads nothing, a pipeline returns Y
assert by["helix4x4-exact"]["load_s"] == 0 and by["tp8pp2"]["load_s"] > 0
# replicas of one device move nothing in the forward pass
assert by["dp16"]["intra_node_bytes"] == 0 and by["dp16"]["inter_node_bytes"] == 0
assert by["dp16"]["inter_link_busy_s"] == 0 and by["helix4x4-sliced"]["inter_link_busy_s"] > by["tp8pp2"]["inter_link_busy_s"] > 0
sens = d["sensitivity"]
assert sens["helix"] == "helix4x4-sliced" and sens["tp_pp"] == "tp8pp2" and len(sens["moves"]) == 16, sens
# moving the between-node bandwidth moves the verdict (both layouts cross the NIC, by different amounts)
bw = [m["helix_vs_tp_pp"] for m in sens["moves"] if m["assumption"] == "between-node bandwidth"]
assert abs(bw[0] - bw[1]) > 0.01 and all(abs(v - sens["helix_vs_tp_pp"]) > 0.001 for v in bw), bw
assert d["paper_claim"]["helix_tokens_per_s"] == 1.58e6
EOF_PY
then ok; else bad "plan --json"; fi

# one micro-batch of the paper's model cannot fit on an H100
out=$("$HELIX" plan --preset paper --hardware h100-dgx --layouts tp16,tp8pp2 --microbatches 1 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -E '^ +- tp16 ' <<<"$out" | grep -q "NO: a device needs" && grep -q "no helix or no TP x PP" <<<"$out"; then ok
else bad "plan: not fitting"; echo "$out" | tail -5 >&2; fi
out=$("$HELIX" plan --preset paper --hardware h200-dgx 2>&1) && grep -q "h200-dgx" <<<"$out" && ok || bad "plan h200-dgx"

# hardware files: every error names the file and line
printf 'name = x\ndevices_per_node = 8\nflopz = 1\n' >"$tmp/typo.hw"
sed 's/^intra_bw.*//' "$HW/h100-dgx.hw" >"$tmp/missing.hw"
sed 's/^mem_bw.*/mem_bw = fast/' "$HW/h100-dgx.hw" >"$tmp/nan.hw"
{ cat "$HW/h100-dgx.hw"; echo "eff_attention_wide = 0.5"; } >"$tmp/badw.hw"
{ cat "$HW/h100-dgx.hw"; echo "eff_attention_w96 = 1.5"; } >"$tmp/bade.hw"
for c in "typo.hw:3: unknown key 'flopz'" "missing.hw: missing 'intra_bw'" "nan.hw:10: mem_bw must be a non-negative number" \
         "badw.hw:$(( $(wc -l <"$HW/h100-dgx.hw") + 1 )): 'eff_attention_wide': write eff_attention_wN" \
         "bade.hw:$(( $(wc -l <"$HW/h100-dgx.hw") + 1 )): eff_attention_w96 must be a fraction of peak in (0, 1]" \
         "nosuch: no file 'nosuch'"; do
    f=${c%%:*}; msg=${c#*: }
    arg=$tmp/$f; [ "$f" = nosuch ] && arg=nosuch
    out=$("$HELIX" plan --hardware "$arg" 2>&1); rc=$?
    [ $rc -eq 2 ] && grep -qF -- "$msg" <<<"$out" && ok || bad "--hardware $f: want rc 2 and '$msg', got rc=$rc: $out"
done
out=$("$HELIX" plan --preset gpt 2>&1); [ $? -eq 2 ] && grep -q "unknown 'gpt'" <<<"$out" && ok || bad "--preset gpt"

# devices_per_host: 4 CPU devices in 2 nodes of 2 on one host of 2 cores share them (the pass is
# bounded by the host's busy time / parallel), so the prediction is slower than with a host per node
sed 's/^devices_per_node = .*/devices_per_node = 2/; /^parallel =/d' "$HW/this-machine.hw" >"$tmp/nodes.hw"
echo "parallel = 2" >>"$tmp/nodes.hw"
cp "$tmp/nodes.hw" "$tmp/host.hw"; echo "devices_per_host = 4" >>"$tmp/host.hw"
echo "devices_per_host = 2.5" >"$tmp/badh.hw"
q="--devices 4 --heads 8 --head-dim 32 --ffn 2048 --layers 4 --batch 4 --seq 256 --layouts tp4 --json"
"$HELIX" plan --hardware "$tmp/nodes.hw" $q "$tmp/n.json" >/dev/null 2>&1
"$HELIX" plan --hardware "$tmp/host.hw" $q "$tmp/h.json" >/dev/null 2>&1
"$PY" - "$tmp/n.json" "$tmp/h.json" <<'PYEOF' && ok || bad "devices_per_host does not slow the shared host down"
import json, sys
t = [json.load(open(f))["layouts"][0]["time_s"] for f in sys.argv[1:]]
assert t[1] > 1.5 * t[0], t
PYEOF
out=$("$HELIX" plan --hardware "$tmp/badh.hw" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "devices_per_host must be a positive integer" <<<"$out" && ok || bad "devices_per_host 2.5: rc=$rc: $out"

# a GEMM table by smallest dimension: thin GEMMs slower than the formula's constant, bad rows named
sed '/^eff_gemm_s/d' "$HW/h100-dgx.hw" >"$tmp/const.hw"
q="--devices 16 --heads 64 --head-dim 16 --ffn 1024 --layers 2 --batch 1 --seq 256 --dtype bf16 --layouts tp16 --json"
"$HELIX" plan --hardware "$tmp/const.hw" $q "$tmp/c.json" >/dev/null 2>&1
"$HELIX" plan --hardware "$HW/h100-dgx.hw" $q "$tmp/t.json" >/dev/null 2>&1
"$PY" - "$tmp/c.json" "$tmp/t.json" <<'PYEOF' && ok || bad "the GEMM table does not slow thin GEMMs down"
import json, sys
r = [json.load(open(f))["layouts"][0] for f in sys.argv[1:]]
assert r[1]["time_s"] > r[0]["time_s"] and r[1]["assumptions"]["eff_gemm_qkv"] < r[0]["assumptions"]["eff_gemm_qkv"], r
PYEOF
{ cat "$HW/h100-dgx.hw"; echo "eff_gemm_sx = 0.5"; } >"$tmp/badg.hw"
out=$("$HELIX" plan --hardware "$tmp/badg.hw" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "write eff_gemm_sN with a smallest GEMM dimension N" <<<"$out" && ok || bad "eff_gemm_sx: rc=$rc: $out"

# eff_scores prices exact by score reduce (only it): a low one slows helix2x2-exact-scores, not -exact
cp "$HW/h100-dgx.hw" "$tmp/sc.hw"; echo "eff_scores = 0.02" >>"$tmp/sc.hw"
q="--devices 4 --heads 8 --head-dim 64 --ffn 1024 --layers 2 --batch 1 --seq 4096 --layouts helix2x2-exact,helix2x2-exact-scores --json"
"$HELIX" plan --hardware "$HW/h100-dgx.hw" $q "$tmp/s0.json" >/dev/null 2>&1
"$HELIX" plan --hardware "$tmp/sc.hw" $q "$tmp/s1.json" >/dev/null 2>&1
"$PY" - "$tmp/s0.json" "$tmp/s1.json" <<'PYEOF' && ok || bad "eff_scores does not price exact/scores (alone)"
import json, sys
t = [{r["layout"]: r["time_s"] for r in json.load(open(f))["layouts"]} for f in sys.argv[1:]]
assert t[1]["helix2x2-exact-scores"] > 2 * t[0]["helix2x2-exact-scores"], t
assert t[1]["helix2x2-exact"] == t[0]["helix2x2-exact"], t
PYEOF

# --validate refuses a hardware file from another CPU and the options it would ignore
sed 's/^# cpu: [^,]*/# cpu: Some Other CPU/' "$HW/this-machine.hw" >"$tmp/other.hw"
out=$("$HELIX" plan --validate --hardware "$tmp/other.hw" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "describes the CPU 'Some Other CPU', but this machine's is" <<<"$out" && ok || bad "validate, other CPU: rc=$rc: $out"
out=$("$HELIX" plan --validate --devices 8 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "drop the model, --devices" <<<"$out" && ok || bad "validate --devices: rc=$rc: $out"
# --validate (calibrating this machine first, 2 emulated nodes): the bytes are exact per link class, some
# cross the nodes; the times are reported
out=$("$HELIX" plan --validate 2>/dev/null); rc=$?
if [ $rc -le 1 ] && grep -q "bytes predicted = measured on every rank, per phase and link class" <<<"$out" \
   && grep -q "median |time error|" <<<"$out" && grep -q "in 2 emulated nodes of 2" <<<"$out" \
   && grep -qE '^  mpi +dp2-tp2 .* exact +[1-9][0-9]* +[1-9][0-9]*$' <<<"$out"; then ok
else bad "plan --validate: rc=$rc"; echo "$out" | tail -6 >&2; fi
echo "$out" | grep "median"

summary

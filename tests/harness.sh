# harness.sh — sourced by the shell tests: pass/fail counters, the closing
# "N passed, N failed" line, and the README-vs---help check.
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# help_in_readme HELP_TEXT README WHAT: every line of the binary's --help
# appears verbatim in the README.
help_in_readme() {
    local missing=0 line
    while IFS= read -r line; do
        grep -qF -- "$line" "$2" || { missing=1; echo "README lacks help line: $line" >&2; }
    done <<<"$1"
    [ $missing -eq 0 ] && ok || bad "README's '$3' block differs from the binary's"
}

# with_torch LOG SCRIPT ARGS...: run a PyTorch reference writer. 0 when it
# ran (its log printed); 1 when torch is missing (exit 77: "SKIPPED",
# nothing counted) or it failed (counted as failed).
with_torch() {
    local log=$1; shift
    "${HELIX_PYTHON:-/usr/bin/python3}" "$@" >"$log" 2>&1
    case $? in
        0)  sed 's/^/  /' "$log"; return 0 ;;
        77) echo "  SKIPPED: $(cat "$log") (these checks are not counted as passed)" ;;
        *)  bad "$(basename "$1") failed: $(tail -3 "$log")" ;;
    esac
    return 1
}

# Print the closing line; the script's exit status is whether all passed.
summary() {
    echo "$pass passed, $fail failed"
    [ $fail -eq 0 ]
}

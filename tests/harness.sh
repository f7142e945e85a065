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

# Print the closing line; the script's exit status is whether all passed.
summary() {
    echo "$pass passed, $fail failed"
    [ $fail -eq 0 ]
}

#!/usr/bin/python3
"""sync-help.py HELIX README — replace the body of each README code block
that starts with "usage: helix CMD" (or "$ helix CMD --help" then it) by the
binary's own `helix CMD --help`, so the README and --help never drift
(tests/test_cli.sh and test_layouts.sh check that they agree)."""
import subprocess
import sys

helix, readme = sys.argv[1], sys.argv[2]
lines = open(readme).read().split("\n")
out, k = [], 0
while k < len(lines):
    out.append(lines[k])
    if lines[k] == "```" and k + 1 < len(lines):
        first = 2 if lines[k + 1].startswith("$ helix ") and k + 2 < len(lines) else 1
        if lines[k + first].startswith("usage: helix "):
            if first == 2:
                out.append(lines[k + 1])
            words = lines[k + first].split()[2:]
            cmd = [helix] + [w for w in words if w.isalpha()] + ["--help"]
            text = subprocess.run(cmd, capture_output=True, text=True).stdout.rstrip("\n")
            out.extend(text.split("\n"))
            k += first
            while lines[k] != "```":
                k += 1
            continue
    k += 1
open(readme, "w").write("\n".join(out))

#!/usr/bin/env bash
# docs/apps.md matches the apps the tests run: every code block that follows a line ending in
# "From <path>:" must be that file's code. Each of the block's lines (stripped of indentation;
# blank and comment-only lines skipped) must occur in the file in the same order; a block may
# leave lines out, never change one.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 - docs/apps.md <<'PY'
import re, sys
doc = sys.argv[1]
lines = open(doc).read().split("\n")
COMMENT = ("--", "//", "#")
def code(text):
    return [l.strip() for l in text if l.strip() and not l.strip().startswith(COMMENT)]
checked, failed, source, i = 0, 0, None, 0
while i < len(lines):
    line = lines[i]
    if line.startswith("```") and len(line) > 3:
        end = lines.index("```", i + 1)
        if source:
            want, have = code(lines[i + 1:end]), code(open(source).read().split("\n"))
            pos = 0
            for w in want:
                try:
                    pos = have.index(w, pos) + 1
                except ValueError:
                    print(f"FAIL: {doc} line {i + 1}: not in {source} (in this order): {w}")
                    failed += 1
                    break
            checked += 1
        source, i = None, end + 1
        continue
    m = re.search(r"From (\S+):$", line)
    if m:
        source = m.group(1)
    elif line.strip():
        source = None
    i += 1
blocks = sum(1 for l in lines if l.startswith("```") and len(l) > 3)
print(f"{checked} of {blocks} code blocks in {doc} are from the apps' files; {failed} differ")
sys.exit(1 if failed or checked == 0 else 0)
PY

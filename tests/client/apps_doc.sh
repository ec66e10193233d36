#!/usr/bin/env bash
# docs/apps.md matches the apps the tests run: every code block that follows a line ending in
# "From <path>:" must be that file's code. Each of the block's lines (stripped of indentation;
# blank and comment-only lines skipped) must occur in the file in the same order; a block may
# leave lines out, never change one. Then the SQLSTATE -> HTTP table against the helpers' copies.
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

# The SQLSTATE -> HTTP table of "Errors → HTTP" and its copies in the helpers: the same pairs
# (anything the table calls "anything else" is 500, so a copy may not list it). In the client
# apps' venv (tests/clients/python/install.sh), where the Python helper imports.
"${NILE_AUTH_VENV:-$HOME/.cache/nile_auth/venv}/bin/python" - docs/apps.md <<'PY'
import json, re, subprocess, sys
sys.path.insert(0, "clients/python")
text = open(sys.argv[1]).read()
section = text.split("## Errors → HTTP", 1)[1].split("\n## ", 1)[0]
table = {}
for row in section.splitlines():
    cells = [c.strip() for c in row.strip("|").split("|")]
    if len(cells) >= 2 and cells[1].isdigit():
        for code in re.findall(r"`([0-9A-Z]{5})`", cells[0]):
            table[code] = int(cells[1])
from nile_auth_client import HTTP_STATUS
node = json.loads(subprocess.run(
    ["node", "--input-type=module", "-e",
     "import('./clients/node/index.js').then((m) => console.log(JSON.stringify(m.HTTP_STATUS_BY_SQLSTATE)))"],
    check=True, capture_output=True, text=True).stdout)
rust = {}
for codes, status in re.findall(r'^\s*((?:"[0-9A-Z]{5}"\s*\|?\s*)+)=>\s*(\d{3})',
                                open("tests/clients/rust/src/nile.rs").read(), re.M):
    for code in re.findall(r'"([0-9A-Z]{5})"', codes):
        rust[code] = int(status)
failed = 0
for name, copy in [("clients/python", dict(HTTP_STATUS)), ("clients/node", node), ("tests/clients/rust/src/nile.rs", rust)]:
    if copy != table:
        print(f"FAIL: {name} maps {copy}, docs/apps.md {table}")
        failed += 1
print(f"the SQLSTATE -> HTTP table ({len(table)} SQLSTATEs) and its 3 copies: {failed} differ")
sys.exit(1 if failed or not table else 0)
PY

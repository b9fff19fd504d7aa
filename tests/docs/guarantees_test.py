#!/usr/bin/env python3
"""Every test docs/operations.md's "What errand guarantees" names exists.

The section backs each claim with a gtest name (`Suite.Name`, `Suite.*`, or
`P/Suite.Name` for a parameterised suite); a renamed or deleted test would
leave a claim unbacked, so this fails then, naming it."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
doc = (root / "docs/operations.md").read_text()
start = doc.index("## What errand guarantees")
section = doc[start:doc.index("\n## ", start + 1)]
sources = "\n".join(p.read_text() for p in (root / "tests").rglob("*.cpp"))
cited = set(re.findall(r"`(?:P/)?([A-Z][A-Za-z]+)\.([A-Za-z]+|\*)`", section))
cited.discard(("Suite", "Name"))  # the section's own example
missing = []
for suite, name in sorted(cited):
    pattern = r"TEST(?:_F|_P)?\(\s*" + suite + r",\s*" + (r"\w+" if name == "*" else name) + r"\)"
    if not re.search(pattern, sources):
        missing.append(f"{suite}.{name}")
if missing:
    print("docs/operations.md cites tests that do not exist: " + ", ".join(missing))
    sys.exit(1)
if len(cited) < 20:
    print(f"only {len(cited)} tests cited: the section was not found whole")
    sys.exit(1)
print(f"{len(cited)} cited tests exist")

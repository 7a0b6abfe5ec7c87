#!/usr/bin/env bash
# Consistency check for the list files, against the librdkafka source that
# build.sh fetches (no broker needed):
#   - classification.tsv has exactly one row per test in tests/test.c
#     (run it after bumping the librdkafka version: new tests show up here);
#   - its categories are known ones;
#   - the numbers in curated.txt and curated-kafka-delay.txt are exactly the
#     numbers classified "curated".
#
#   compat/librdkafka/check.sh        (LIBRDKAFKA_SRC=<tree> to skip build.sh)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "${LIBRDKAFKA_SRC:-}" ]]; then
    SRC="$LIBRDKAFKA_SRC"
else
    SRC="$("$HERE/build.sh" | tail -n 1)"
fi

python3 - "$SRC/tests/test.c" "$HERE/classification.tsv" "$HERE/curated.txt" "$HERE/curated-kafka-delay.txt" <<'PY'
import re, sys
test_c, tsv, *curated_lists = sys.argv[1:]
src = open(test_c, errors="replace").read()
m = re.search(r"struct test tests\[\] = \{(.*?)\n\s*\{NULL\}\};", src, re.S)
if not m:
    sys.exit(f"{test_c}: cannot find the tests[] table")
names = re.findall(r"_TEST\((\w+),", re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S))

cats = {"curated", "needs-groups", "needs-transactions", "needs-sasl-ssl", "local-only", "other"}
rows, errors = {}, []
with open(tsv) as f:
    header = f.readline().rstrip("\n").split("\t")
    if header[:4] != ["test", "name", "category", "reason"]:
        errors.append(f"classification.tsv: unexpected header {header}")
    for n, line in enumerate(f, 2):
        cols = line.rstrip("\n").split("\t")
        if len(cols) < 4:
            errors.append(f"classification.tsv:{n}: expected at least 4 columns")
            continue
        num, name, cat, reason = cols[:4]
        if name in rows:
            errors.append(f"classification.tsv:{n}: duplicate {name}")
        if not name.startswith(num + "_"):
            errors.append(f"classification.tsv:{n}: number {num} does not match {name}")
        if cat not in cats:
            errors.append(f"classification.tsv:{n}: unknown category '{cat}'")
        if not reason.strip():
            errors.append(f"classification.tsv:{n}: empty reason")
        rows[name] = cat

for name in names:
    if name not in rows:
        errors.append(f"classification.tsv: missing {name} (new in this librdkafka?)")
for name in rows:
    if name not in names:
        errors.append(f"classification.tsv: {name} is not in {test_c}")

listed = set()
for curated in curated_lists:
    for line in open(curated):
        line = line.split("#", 1)[0].split()
        if line:
            listed.add(line[0])
classified = {name[:4] for name, cat in rows.items() if cat == "curated"}
for num in sorted(listed - classified):
    errors.append(f"curated.txt: {num} has no row classified 'curated'")
for num in sorted(classified - listed):
    errors.append(f"classification.tsv: {num} is 'curated' but not in curated.txt")

for e in errors:
    print(e)
print(f"{len(names)} tests in test.c, {len(rows)} classified, {len(listed)} curated numbers: "
      + ("OK" if not errors else f"{len(errors)} problem(s)"))
sys.exit(1 if errors else 0)
PY

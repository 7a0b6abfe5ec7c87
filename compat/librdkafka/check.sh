#!/usr/bin/env bash
# Consistency check for the list files, against the librdkafka source that
# build.sh fetches (no broker needed):
#   - classification.tsv has exactly one row per test in tests/test.c
#     (run it after bumping the librdkafka version: new tests show up here);
#   - its categories are known ones;
#   - the numbers in curated.txt and curated-kafka-delay.txt are exactly the
#     numbers classified "curated", and those in curated-cluster.txt the
#     numbers classified "cluster".
#
#   compat/librdkafka/check.sh        (LIBRDKAFKA_SRC=<tree> to skip build.sh)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "${LIBRDKAFKA_SRC:-}" ]]; then
    SRC="$LIBRDKAFKA_SRC"
else
    SRC="$("$HERE/build.sh" | tail -n 1)"
fi

python3 - "$SRC/tests/test.c" "$HERE/classification.tsv" "$HERE/curated-cluster.txt" "$HERE/curated.txt" "$HERE/curated-kafka-delay.txt" <<'PY'
import re, sys
test_c, tsv, cluster_list, *curated_lists = sys.argv[1:]
src = open(test_c, errors="replace").read()
m = re.search(r"struct test tests\[\] = \{(.*?)\n\s*\{NULL\}\};", src, re.S)
if not m:
    sys.exit(f"{test_c}: cannot find the tests[] table")
names = re.findall(r"_TEST\((\w+),", re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S))

cats = {"curated", "cluster", "needs-groups", "needs-transactions", "needs-sasl-ssl", "local-only", "other"}
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

def numbers(paths):
    out = set()
    for path in paths:
        for line in open(path):
            line = line.split("#", 1)[0].split()
            if line:
                out.add(line[0])
    return out

listed = numbers(curated_lists)
for cat, file, nums in (("curated", "curated.txt", listed), ("cluster", "curated-cluster.txt", numbers([cluster_list]))):
    classified = {name[:4] for name, c in rows.items() if c == cat}
    for num in sorted(nums - classified):
        errors.append(f"{file}: {num} has no row classified '{cat}'")
    for num in sorted(classified - nums):
        errors.append(f"classification.tsv: {num} is '{cat}' but not in {file}")

for e in errors:
    print(e)
print(f"{len(names)} tests in test.c, {len(rows)} classified, {len(listed)} curated numbers: "
      + ("OK" if not errors else f"{len(errors)} problem(s)"))
sys.exit(1 if errors else 0)
PY

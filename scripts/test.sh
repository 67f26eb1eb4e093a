#!/usr/bin/env bash
# Install neurodyn with its test extras and run the whole suite (the README's second command).
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[test]" || exit 1

# Headless Chromium (the report test) and a local SLURM (the cluster tests) are installed and
# started in the background while the suite runs: the tests that need them wait for the flag file
# NEURODYN_SETUP_DONE (tests/helpers.py) and run after the long model tests (tests/conftest.py).
# Where a service cannot start its tests skip; under CI (CI set) they fail.
work=$(mktemp -d)
export NEURODYN_SETUP_DONE="$work/services.done"
(
    command -v chromium >/dev/null \
        || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
        || echo "Chromium could not be installed: tests marked browser will skip (fail when CI is set)"
    bash scripts/slurm/start.sh \
        || echo "SLURM did not start: tests marked slurm will skip (fail when CI is set)"
    touch "$NEURODYN_SETUP_DONE"
) >"$work/services.log" 2>&1 &
export NEURODYN_SETUP_PID=$!

# The README's install order (pip install ., then pip install -e .[test]) in a fresh venv (~25 s
# CPU), also in the background; with the whole suite only, not when running chosen tests
# (`bash scripts/test.sh tests/io/test_eeg.py`).
install_pid=""
if [ "$#" -eq 0 ]; then bash scripts/check_install.sh >"$work/install.log" 2>&1 & install_pid=$!; fi

# two worker processes: the suite is CPU-bound and CI has 2 cores (NEURODYN_TEST_WORKERS=0: serial).
# A test module runs on one worker (--dist loadfile): its module fixtures are built and its numba
# kernels compiled once, not on both workers; tests/conftest.py orders the modules, which
# --no-loadscope-reorder keeps (xdist otherwise sorts modules by their number of tests, which
# left the one-test, 200 s module tests/bicluster/test_bicluster_anneal.py to start last).
python3 -m pytest -q -n "${NEURODYN_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder \
    --durations=15 "$@"
rc=$?

wait "$NEURODYN_SETUP_PID"
sed 's/^/services: /' "$work/services.log"
if [ -n "$install_pid" ]; then
    wait "$install_pid"; install_rc=$?
    sed 's/^/install check: /' "$work/install.log"
    if [ "$install_rc" -ne 0 ]; then echo "install check failed"; [ "$rc" -ne 0 ] || rc=1; fi
fi
rm -rf "$work"
# pytest exits 5 when it collected no test: treat that as a failure of the suite.
if [ "$rc" -eq 5 ]; then echo "no tests ran"; exit 1; fi
exit $rc

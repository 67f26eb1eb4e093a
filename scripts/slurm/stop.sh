#!/usr/bin/env bash
# Stop the single-node SLURM daemons started by scripts/slurm/start.sh (munged is left running).
set -uo pipefail
for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
    if [ -s "$pidfile" ]; then
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null && echo "slurm-setup: stopped pid $pid ($pidfile)" >&2
        rm -f "$pidfile"
    fi
done
exit 0

#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine (munged, slurmctld, slurmd on localhost).
# Idempotent: returns 0 at once when the controller already answers and the node is usable.
# Installs Debian's slurm-wlm and munge when missing (needs root and apt). Used by
# tests/pipeline/test_slurm.py and scripts/test.sh; `scripts/slurm/stop.sh` stops what this started.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by neurodyn scripts/slurm/start.sh"
LOG=/var/log/slurm

say() { echo "slurm-setup: $*" >&2; }

node_ready() {
    pgrep -x slurmd >/dev/null || return 1
    scontrol ping 2>/dev/null | grep -q "is UP" || return 1
    local state
    state=$(sinfo -h -N -o "%t" 2>/dev/null | head -n1)
    [[ "$state" == idle* || "$state" == mix* || "$state" == alloc* || "$state" == comp* ]]
}

if command -v scontrol >/dev/null 2>&1 && node_ready; then
    say "already running"; exit 0
fi

if [ "$(id -u)" -ne 0 ]; then say "needs root to install and start daemons"; exit 1; fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q slurm-wlm munge >/dev/null; }
fi

# -- munge ---------------------------------------------------------------------------------
mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    rm -f /run/munge/munged.pid
    if command -v runuser >/dev/null; then runuser -u munge -- /usr/sbin/munged --force
    else /usr/sbin/munged --force; fi
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null || { say "munged does not answer"; exit 1; }

# -- slurm.conf ----------------------------------------------------------------------------
HOST=$(hostname -s)
NODE_LINE=$(slurmd -C | head -n1)   # NodeName=<host> CPUs=.. ... RealMemory=..
mkdir -p "$CONF_DIR" "$LOG" /var/spool/slurmctld /var/spool/slurmd
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    say "$CONF exists and was not written by this script; using it as is"
else
    cat > "$CONF" <<CONF
$MARK
ClusterName=neurodyn
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.log
$NODE_LINE State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
fi

# -- daemons -------------------------------------------------------------------------------
if ! scontrol ping 2>/dev/null | grep -q "is UP"; then
    say "starting slurmctld"
    /usr/sbin/slurmctld -c 2>/dev/null || /usr/sbin/slurmctld
fi
if ! pgrep -x slurmd >/dev/null; then
    say "starting slurmd"
    /usr/sbin/slurmd || { say "slurmd failed to start; see $LOG/slurmd.log"; exit 1; }
fi
for _ in $(seq 100); do
    if node_ready; then say "ready: $(sinfo -h -o '%P %D %t %c')"; exit 0; fi
    # a node left DOWN/DRAIN by an earlier unclean stop: bring it back
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    sleep 0.3
done
say "controller or node did not come up; see $LOG/slurmctld.log and $LOG/slurmd.log"
sinfo >&2 || true
exit 1

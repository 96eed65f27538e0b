#!/usr/bin/env bash
# The sweep on a real (one-node) SLURM cluster: stands up munge, MariaDB, slurmdbd, slurmctld and
# slurmd from the Debian packages in a scratch folder, installs `.[cluster]` (the pinned executor
# plugin) into the venv, runs the test configuration through `--profile workflow/profiles/slurm`
# in one scratch copy of the project and locally in another, and checks that every frozen-format
# output is byte-identical between the two (docs/cluster.md).
#
#   sudo tests/cluster/run_slurm_test.sh          # the whole check (what .ci/run calls)
#   sudo tests/cluster/run_slurm_test.sh up       # only stand the cluster up and leave it running;
#                                                 # prints `export SLURM_CONF=...` and the stop command
#   sudo tests/cluster/run_slurm_test.sh down DIR # stop a cluster started with `up`, by its pids
#
# Exit status: 0 passed; 77 skipped, with the reason, when the cluster itself cannot be had (the
# packages or the executor plugin cannot be installed, a daemon does not come up, the machine has
# a SLURM configuration already); 1 failed: e3's runs or their comparison (what .ci/run fails on).
#
# Needs root (daemons, apt-get). Installs slurm-wlm slurmdbd munge mariadb-server with apt-get if
# they are missing (about 4 minutes). Env: E3_VENV (default .venv of this checkout), E3_SLURM_TIMEOUT_S
# (limit of each snakemake run, default 900). Not collected by pytest (not a test_*.py file).
# Every daemon runs in the foreground of a background job of this script, with its files under the
# scratch folder, and is stopped by its pid when the script exits, also on failure (trap).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${E3_VENV:-$REPO/.venv}
TIMEOUT_S=${E3_SLURM_TIMEOUT_S:-900}
MODE=${1:-test}
CLUSTER=e3test
ACCOUNT=runner
PARTITION=debug
# Not the SLURM/MySQL defaults (6817-6819, 3306), so a cluster already on the machine is not hit.
CTLD_PORT=16817
SLURMD_PORT=16818
DBD_PORT=16819
MYSQL_PORT=13306

log() { printf '[slurm-test %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "FAIL: $*"; exit 1; }
skip() { log "SKIP: $*"; exit 77; }  # no cluster to test on: not a failure of e3

stop_pids() {  # stop_pids DIR: TERM every pid in DIR/pids (last started first), KILL after 20 s
    local dir=$1 pid
    [ -f "$dir/pids" ] || return 0
    if [ -n "${SLURM_CONF:-}" ] && command -v scancel >/dev/null; then
        timeout 10 scancel --cluster="$CLUSTER" --user=root >/dev/null 2>&1 || true
    fi
    for pid in $(tac "$dir/pids"); do
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$dir/pids"
    # the link to our slurm.conf that this script made (and nothing else)
    if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$dir/etc/slurm.conf" ]; then
        rm -f /etc/slurm/slurm.conf
    fi
}

if [ "$MODE" = down ]; then
    [ -n "${2:-}" ] || die "usage: $0 down DIR (the folder printed by '$0 up')"
    export SLURM_CONF=$2/etc/slurm.conf
    stop_pids "$2"
    log "stopped the daemons of $2"
    exit 0
fi

[ "$(id -u)" = 0 ] || skip "must run as root (it starts the SLURM, munge and MariaDB daemons)"
[ -x "$VENV/bin/python" ] || die "no venv at $VENV (set E3_VENV or run the README's install first)"

# --- packages ------------------------------------------------------------------------------------
need=(munged mungekey mariadbd mariadb-install-db slurmdbd slurmctld slurmd sacctmgr sbatch sacct)
missing() { for c in "${need[@]}"; do PATH=$PATH:/usr/sbin command -v "$c" >/dev/null || return 0; done; return 1; }
if missing; then
    log "installing slurm-wlm slurmdbd munge mariadb-server (apt-get, ~4 min)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || skip "apt-get update failed (no package registry reachable)"
    apt-get install -y -qq slurm-wlm slurmdbd munge mariadb-server >/tmp/e3-slurm-apt.log 2>&1 ||
        { tail -n 20 /tmp/e3-slurm-apt.log; skip "apt-get install failed"; }
fi
export PATH=$PATH:/usr/sbin
missing && skip "still missing after apt-get: one of ${need[*]}"

# --- scratch folder and clean-up -----------------------------------------------------------------
W=$(mktemp -d /tmp/e3-slurm.XXXXXX)
chmod 755 "$W"  # the munge and mysql users must reach their folders inside
mkdir -p "$W/etc" "$W/munge" "$W/mysql" "$W/run" "$W/log" "$W/ctld" "$W/slurmd"
: >"$W/pids"
export SLURM_CONF=$W/etc/slurm.conf
if [ "$MODE" = test ]; then
    # the scratch folder (logs, both project copies) is kept when the check fails
    trap 'rc=$?; stop_pids "$W"; if [ $rc = 0 ]; then rm -rf "$W"; log "daemons stopped";
          else log "daemons stopped; logs in $W/log"; fi; exit $rc' EXIT
    trap 'exit 130' INT TERM
fi
start() {  # start NAME CMD...: run CMD in the background, record its pid
    local name=$1; shift
    "$@" >>"$W/log/$name.out" 2>&1 &
    LAST_PID=$!
    echo $LAST_PID >>"$W/pids"
    log "started $name (pid $LAST_PID)"
}
wait_for() {  # wait_for SECONDS WHAT CMD...: poll CMD (a command or a function) until it succeeds
    local limit=$1 what=$2; shift 2
    local end=$((SECONDS + limit))
    while [ $SECONDS -lt $end ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
    tail -n 20 "$W"/log/* >&2 || true
    skip "$what did not come up within $limit s"
}

# --- munge ---------------------------------------------------------------------------------------
mungekey --create --keyfile="$W/munge/munge.key" --force
chown -R munge:munge "$W/munge"
chmod 755 "$W/munge"  # the socket must be reachable by every user that submits
chmod 400 "$W/munge/munge.key"
MUNGE_SOCKET=$W/munge/munge.socket
start munged setpriv --reuid=munge --regid=munge --init-groups munged --foreground --force --key-file="$W/munge/munge.key" \
    --socket="$MUNGE_SOCKET" --pid-file="$W/munge/munged.pid" --seed-file="$W/munge/munged.seed" \
    --log-file="$W/munge/munged.log"
wait_for 20 munged test -S "$MUNGE_SOCKET"

# --- MariaDB (the accounting database) -----------------------------------------------------------
DB_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mariadb-install-db --user=mysql --datadir="$W/mysql" --auth-root-authentication-method=socket \
    --skip-test-db >"$W/log/mariadb-install-db.out" 2>&1
MYSQL_SOCKET=$W/mysql/mysqld.sock
start mariadbd mariadbd --user=mysql --datadir="$W/mysql" --socket="$MYSQL_SOCKET" \
    --port=$MYSQL_PORT --bind-address=127.0.0.1 --pid-file="$W/mysql/mysqld.pid" \
    --log-error="$W/log/mariadbd.err" --innodb-buffer-pool-size=64M
wait_for 60 MariaDB timeout 5 mariadb-admin --socket="$MYSQL_SOCKET" -u root ping
mariadb --socket="$MYSQL_SOCKET" -u root <<SQL
CREATE DATABASE slurm_acct_db;
CREATE USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL

# --- slurmdbd, slurmctld, slurmd -----------------------------------------------------------------
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
cat >"$W/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$W/run/slurmdbd.pid
LogFile=$W/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$W/etc/slurmdbd.conf"
cat >"$W/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$W/ctld
SlurmdSpoolDir=$W/slurmd
SlurmctldPidFile=$W/run/slurmctld.pid
SlurmdPidFile=$W/run/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# for slurmdbd this is the munge socket the clients (sacctmgr, sacct, slurmctld) use
AccountingStoragePass=$MUNGE_SOCKET
JobAcctGatherType=jobacct_gather/none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# Job steps need it at the default path too: the executor's job step (snakemake-executor-plugin-
# slurm-jobstep 0.6.1) drops SLURM_* variables, SLURM_CONF included, before its inner `srun`.
[ -e /etc/slurm/slurm.conf ] && skip "/etc/slurm/slurm.conf exists: this machine has a SLURM \
configuration already; run the test on a machine without one"
mkdir -p /etc/slurm
ln -s "$SLURM_CONF" /etc/slurm/slurm.conf
start slurmdbd slurmdbd -D
DBD_PID=$LAST_PID
wait_for 60 slurmdbd timeout 5 sacctmgr -n list cluster
sacctmgr -i add cluster "$CLUSTER" >/dev/null
start slurmctld slurmctld -D -i
wait_for 60 slurmctld timeout 5 scontrol ping
start slurmd slurmd -D
node_idle() { timeout 5 sinfo -h -n "$HOST" -o %t | grep -qx idle; }
wait_for 60 "slurmd (node idle)" node_idle
sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" >/dev/null
sacctmgr -i add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null
log "cluster $CLUSTER up: node $HOST, $CPUS CPUs, $MEM_MB MB, partition $PARTITION, account $ACCOUNT"

if [ "$MODE" = up ]; then
    echo "export SLURM_CONF=$SLURM_CONF"
    echo "stop with: $0 down $W"
    exit 0
fi

# --- the executor plugin (the optional extra, never part of the default environment) ---------------
log "installing .[cluster] into $VENV"
"$VENV/bin/pip" install -q -c "$REPO/constraints.txt" -e "$REPO[cluster]" ||
    skip "pip could not install .[cluster] (the executor plugin) into $VENV"

# --- two scratch copies of the project: the checkout's files without the outputs of the run ------
copy_project() {
    mkdir -p "$1"
    (cd "$REPO" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - --) | tar -xf - -C "$1"
    # what the test run writes: removed from the copy so both runs make them from scratch
    rm -rf "$1/results/aggregate" "$1/results/tables" "$1/results/figures" "$1/results/MANIFEST.json" \
        "$1/results/paper_comparison.md" "$1/paper/generated" "$1/paper/build"
}
copy_project "$W/local"
copy_project "$W/cluster"
export PATH=$VENV/bin:$PATH  # the shell rules call the `e3` console script, also inside SLURM jobs
export LITELLM_LOCAL_MODEL_COST_MAP=True

log "local run of the test configuration"
t0=$(date +%s)
(cd "$W/local" && timeout -k 30 "$TIMEOUT_S" snakemake --cores 2 --configfile config/test/config.yaml \
    --quiet >"$W/log/local.out" 2>&1) || { tail -n 40 "$W/log/local.out"; die "local run failed"; }
log "local run: $(( $(date +%s) - t0 )) s"

# The hang's regression check: once a simulation job runs, stop slurmdbd for 40 s (an accounting
# outage; sacct fails meanwhile). With the plugin's defaults every status try of that poll fails
# at once and the jobs in flight are never looked at again (Snakemake waits forever); the
# profile's spaced tries (10 s apart, 30 of them) must ride it out.
outage() {
    local end=$((SECONDS + TIMEOUT_S))
    until timeout 5 squeue -h -t R -o %k 2>/dev/null | grep -q '^rule_simulate'; do
        [ $SECONDS -lt $end ] || return 0
        sleep 1
    done
    log "accounting outage: stopping slurmdbd (pid $DBD_PID) for 40 s"
    kill -TERM "$DBD_PID"
    : >"$W/outage_started"
    sleep 40
    start slurmdbd slurmdbd -D
    log "accounting outage over"
}
log "cluster run: snakemake --profile workflow/profiles/slurm --configfile config/test/config.yaml"
t0=$(date +%s)
outage &
OUTAGE_PID=$!
if ! (cd "$W/cluster" && timeout -k 30 "$TIMEOUT_S" snakemake --profile workflow/profiles/slurm \
        --configfile config/test/config.yaml \
        --default-resources slurm_account="$ACCOUNT" slurm_partition="$PARTITION" \
        >"$W/log/cluster.out" 2>&1); then
    kill "$OUTAGE_PID" 2>/dev/null || true
    tail -n 60 "$W/log/cluster.out"
    squeue -a || true
    sacct -X -a --format=JobID,JobName%40,State,Elapsed | tail -n 20 || true
    die "cluster run failed or timed out (${TIMEOUT_S} s)"
fi
cluster_s=$(( $(date +%s) - t0 ))
wait "$OUTAGE_PID" || true
[ -e "$W/outage_started" ] || die "the accounting outage did not happen during the cluster run"
n_jobs=$(sacct -X -a -n --format=JobID | wc -l)
n_done=$(sacct -X -a -n --format=State | grep -c COMPLETED || true)
log "cluster run: $cluster_s s, $n_jobs SLURM jobs ($n_done COMPLETED)"
[ "$n_jobs" -gt 0 ] || die "no job went through SLURM"

# --- every frozen-format output of the cluster run equals the local run's ------------------------
n=0
for f in $(cd "$W/local" && ls results/aggregate/*.csv results/tables/*.csv results/tables/*.md \
        results/paper_comparison.md); do
    cmp -s "$W/local/$f" "$W/cluster/$f" || { diff "$W/local/$f" "$W/cluster/$f" | head -n 20; die "$f differs"; }
    n=$((n + 1))
done
[ "$n" -ge 8 ] || die "only $n outputs compared"
log "OK: $n frozen-format outputs identical (local vs SLURM)"

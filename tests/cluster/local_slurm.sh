#!/usr/bin/env bash
# local_slurm.sh start|stop|env - a real one-node Slurm cluster on this machine, for tests/cluster and benchmarks.
#
# `start` (as root) installs Debian's slurmctld, slurmd, slurm-client and munge with apt-get if they are missing,
# writes a one-node config (CPUs and memory from `slurmd -C`; partitions `cpu` (default) and `gpu`; two fake GPUs as
# gres on dummy character devices) and starts munged, slurmctld and slurmd without systemd. It prints
# `export SLURM_CONF=...` last: clients (sbatch, squeue, snakemake's slurm plugin) find the cluster through it.
# `stop` cancels the jobs and stops the daemons by their pid files (munged only if `start` started it). `env` prints
# the export line only.
#
# Everything lives under $DNALM_SLURM_DIR (default /var/lib/dnalm-slurm), nothing under /etc/slurm, and the daemons
# listen on their own ports: an installed /etc/slurm/slurm.conf whose controller is down makes every snakemake call
# ~10 s slower (the slurm plugin runs `scontrol show config` at start-up), and without one `scontrol` fails at once.
# While the cluster runs, slurmd (configless) caches the config in /run/slurm/conf for client commands inside jobs;
# `stop` removes that cache again.
set -euo pipefail

: "${DNALM_SLURM_DIR:=/var/lib/dnalm-slurm}"
: "${DNALM_SLURM_PORT:=6917}"          # slurmctld; slurmd gets the next port
: "${DNALM_SLURM_GPUS:=2}"            # fake GPUs (gres/gpu on dummy character devices)
D=$DNALM_SLURM_DIR
CONF=$D/etc/slurm.conf
export SLURM_CONF=$CONF DEBIAN_FRONTEND=noninteractive
T0=$(date +%s)

log()   { echo "[local_slurm +$(( $(date +%s) - T0 ))s] $*" >&2; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() { # wait_for <what> <seconds> <cmd...>
  local what=$1 secs=$2 i; shift 2
  for ((i = 0; i < secs * 4; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "local_slurm: timed out after ${secs}s waiting for $what" >&2; return 1
}
stop_pid() { # stop_pid <pidfile>: SIGTERM the daemon it names, wait for it to exit, SIGKILL after 30 s
  local pf=$1 pid i
  alive "$pf" || return 0
  pid=$(cat "$pf"); kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 120; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
}
dump_logs() { tail -n 20 "$D"/log/*.log >&2 2>/dev/null || true; }

install_packages() {
  local pkgs=(slurmctld slurmd slurm-client munge) missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
  "${apt[@]}" install "${missing[@]}" >/dev/null 2>&1 || { apt-get -o DPkg::Lock::Timeout=600 update -qq
    "${apt[@]}" install "${missing[@]}" >/dev/null; }
}

start_munge() {
  mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge /etc/munge
  chmod 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
      || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key; chmod 0600 /etc/munge/munge.key
  if ! alive /run/munge/munged.pid; then
    runuser -u munge -- /usr/sbin/munged
    touch "$D/run/munged.ours"   # `stop` stops the munged it started, and leaves one that was already running
  fi
  wait_for munged 20 sh -c 'munge -n | unmunge'
}

write_config() { # prints 1 when the config changed
  local host hw mem spec tmp
  host=$(hostname -s)
  getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
  mkdir -p "$D"/etc "$D"/state "$D"/spool "$D"/log "$D"/run
  local i gres=""
  for ((i = 0; i < DNALM_SLURM_GPUS; i++)); do   # each the same device as /dev/null: a "GPU" Slurm can hand out
    [ -c "$D/fakegpu$i" ] || mknod "$D/fakegpu$i" c 1 3 2>/dev/null || ln -sfn /dev/null "$D/fakegpu$i"
    gres+="NodeName=$host Name=gpu File=$D/fakegpu$i"$'\n'
  done
  hw=$(slurmd -C | head -n1)   # NodeName=x CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ... RealMemory=24105
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  mem=$(( mem > 4096 ? mem - 1024 : mem ))
  spec=$(sed -e 's/^NodeName=[^ ]* *//' -e 's/ *RealMemory=[0-9]*//' <<<"$hw")
  tmp=$(mktemp)
  cat > "$tmp" <<CONF
# written by tests/cluster/local_slurm.sh
ClusterName=dnalmtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$DNALM_SLURM_PORT
SlurmdPort=$(( DNALM_SLURM_PORT + 1 ))
SlurmctldParameters=enable_configless
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# squeue must still show a finished job when snakemake's status check comes (no slurmdbd, so no sacct)
MinJobAge=600
KillWait=5
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=30
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 $spec RealMemory=$mem Gres=gpu:$DNALM_SLURM_GPUS State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
CONF
  printf '%s' "$gres" > "$D/etc/gres.conf"
  if cmp -s "$tmp" "$CONF"; then rm -f "$tmp"; echo 0; else install -m 0644 "$tmp" "$CONF"; rm -f "$tmp"; echo 1; fi
}

node_state() { sinfo -h -n "$(hostname -s)" -o %t 2>/dev/null; }
node_ok() { case "$(node_state)" in idle|mix|alloc) return 0;; esac; return 1; }

start() {
  [ "$(id -u)" = 0 ] || { echo "local_slurm.sh start must run as root" >&2; exit 1; }
  install_packages
  mkdir -p "$D/run"
  start_munge
  if [ "$(write_config)" = 1 ]; then
    stop_pid "$D/run/slurmd.pid"; stop_pid "$D/run/slurmctld.pid"
  fi
  alive "$D/run/slurmctld.pid" || slurmctld -f "$CONF"
  wait_for slurmctld 60 scontrol ping
  # configless: slurmd fetches the config from slurmctld and caches it in /run/slurm/conf, where client commands on
  # the node find it when SLURM_CONF is not set (the slurm plugin's job step clears SLURM_* before its inner srun)
  alive "$D/run/slurmd.pid" || slurmd --conf-server "127.0.0.1:$DNALM_SLURM_PORT"
  local i
  for ((i = 0; i < 240; i++)); do
    node_ok && break
    case "$(node_state)" in   # a node drained or down under an earlier configuration
      drain*|drng*|down*|inval*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.25
  done
  node_ok || { sinfo -N -l >&2; dump_logs; exit 1; }
  log "slurm up: slurmctld $(cat "$D/run/slurmctld.pid"), slurmd $(cat "$D/run/slurmd.pid"), partitions cpu and gpu"
  echo "export SLURM_CONF=$CONF"
}

stop() {
  if [ -s "$CONF" ] && alive "$D/run/slurmctld.pid"; then
    squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
  fi
  stop_pid "$D/run/slurmd.pid"
  stop_pid "$D/run/slurmctld.pid"
  # the cached config would make every client command (and every snakemake start-up) wait for the stopped controller
  [ "$(readlink /run/slurm/conf 2>/dev/null)" = "$D/spool/conf-cache" ] && rm -f /run/slurm/conf
  if [ -e "$D/run/munged.ours" ]; then stop_pid /run/munge/munged.pid; rm -f "$D/run/munged.ours"; fi
  log "slurm stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac

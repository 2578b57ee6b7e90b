#!/usr/bin/env bash
# Start a single-node SLURM on this machine (localhost) for tests/hpc: munged, slurmctld, slurmd.
#
# Installs Debian's slurm-wlm and munge when missing (root + apt-get needed), writes a localhost
# slurm.conf (one node with this machine's CPUs and memory, one partition 'debug', no cgroups:
# proctrack/linuxproc, task/none; no slurmdbd: jobcomp/filetxt, accounting_storage/none), starts
# the three daemons without systemd and waits until `sinfo` shows the node idle.
# Idempotent: run again, it restarts only what is down (or both slurm daemons if the configuration
# it would write changed); a SLURM with a usable node that it may not touch (not root) or should
# not (/etc/slurm/slurm.conf not written by it) is left as it is. Exit 0 when a job can start;
# otherwise one line "start_slurm: ..." on stderr and a non-zero exit (2: cannot install, not
# root, or a foreign slurm.conf; 3: a daemon does not start; 4: the node does not become idle).
#
# Environment: ALLOOP_SLURM_WAIT (seconds to wait for the idle node, default 60).
set -uo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by alloop tests/hpc/start_slurm.sh"
LOG_DIR=/var/log/slurm
SPOOL=/var/spool/slurm
WAIT="${ALLOOP_SLURM_WAIT:-60}"
CONF_CHANGED=0

die() { echo "start_slurm: $2" >&2; exit "$1"; }
say() { echo "start_slurm: $*"; }

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -n1; }

running() {  # NAME [PIDFILE]: the daemon of that pid file is alive (a daemon still shutting down may count)
  local pid
  pid=$(cat "${2:-/run/$1.pid}" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

stable() {  # both slurm daemons alive now and a second later
  running slurmctld && running slurmd && sleep 1 && running slurmctld && running slurmd
}

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
  command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
  command -v sinfo >/dev/null 2>&1 || missing+=(slurm-client)
  command -v munged >/dev/null 2>&1 || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die 2 "missing ${missing[*]} and not root: install slurm-wlm and munge, or run as root"
  command -v apt-get >/dev/null 2>&1 || die 2 "missing ${missing[*]} and no apt-get: install slurm-wlm and munge"
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # no init system here: keep the packages' scripts from starting daemons (we start them below)
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' >$policy; chmod +x $policy; added=1; fi
  local ok=0
  { apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/tmp/alloop-slurm-apt.log 2>&1 \
    || { apt-get update -q >>/tmp/alloop-slurm-apt.log 2>&1 \
         && apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge \
              >>/tmp/alloop-slurm-apt.log 2>&1; }; } || ok=$?
  [ $added -eq 1 ] && rm -f $policy
  [ $ok -eq 0 ] || die 2 "apt-get install slurmctld slurmd slurm-client munge failed (see /tmp/alloop-slurm-apt.log)"
}

start_munge() {
  mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
  local owner=root
  id munge >/dev/null 2>&1 && owner=munge
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null 2>&1; then mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
  fi
  chown -R "$owner:$owner" /etc/munge /var/lib/munge /var/log/munge /run/munge
  chmod 700 /etc/munge /var/lib/munge /var/log/munge; chmod 400 /etc/munge/munge.key; chmod 755 /run/munge
  if ! running munged /run/munge/munged.pid; then
    if [ "$owner" = munge ]; then runuser -u munge -- /usr/sbin/munged >/dev/null 2>&1 || true
    else /usr/sbin/munged --force >/dev/null 2>&1 || true; fi
  fi
  local i
  for i in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.5; done
  die 3 "munged did not start or does not answer (munge -n | unmunge fails; see /var/log/munge/munged.log)"
}

node_line() {
  # this machine as slurmd sees it (CPUs, sockets, cores, threads, memory), one node named after the host
  local line mem
  line=$(slurmd -C 2>/dev/null | head -n1)
  [ -n "$line" ] || die 3 "slurmd -C printed nothing: cannot read this machine's CPUs and memory"
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$line")
  # keep some memory for the driver and the OS: the node offers 90 %
  line=$(sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 9 / 10))/; s/^NodeName=[^ ]*/NodeName=$(hostname -s)/" <<<"$line")
  echo "$line NodeAddr=127.0.0.1 State=UNKNOWN"
}

def_mem_per_cpu() {
  # a job that asks for no memory gets its share per CPU, not the whole node
  local line
  line=$(slurmd -C 2>/dev/null | head -n1)
  echo $(( $(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$line") * 9 / 10 / $(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$line") ))
}

write_conf() {
  mkdir -p $CONF_DIR $LOG_DIR $SPOOL/ctld $SPOOL/d
  if [ -e $CONF ] && ! grep -qF "$MARK" $CONF; then
    die 2 "$CONF exists and was not written by this script; not touching it (move it away to use this script)"
  fi
  local host new
  host=$(hostname -s)
  new=$(cat <<EOF
$MARK
ClusterName=alloop-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmdTimeout=60
MinJobAge=600
MpiDefault=none
DefMemPerCPU=$(def_mem_per_cpu)
$(node_line)
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
)
  if [ -e $CONF ] && [ "$new" = "$(cat $CONF)" ]; then return 0; fi
  echo "$new" >$CONF
  say "wrote $CONF"
  CONF_CHANGED=1
}

stop_daemon() {  # by the pid file that slurm.conf names
  local i pid
  pid=$(cat "/run/$1.pid" 2>/dev/null) || die 3 "$1 runs but /run/$1.pid is missing: stop it yourself"
  kill "$pid" 2>/dev/null || true
  for i in $(seq 20); do running "$1" || return 0; sleep 0.5; done
  die 3 "$1 does not stop"
}

start_daemons() {
  if [ "$CONF_CHANGED" -eq 1 ] && { running slurmctld || running slurmd; }; then
    say "configuration changed: restarting slurmctld and slurmd"
    stop_daemon slurmd; stop_daemon slurmctld
  fi
  if ! running slurmctld; then
    slurmctld || die 3 "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
  fi
  if ! running slurmd; then
    slurmd || die 3 "slurmd did not start (see $LOG_DIR/slurmd.log)"
  fi
}

wait_idle() {
  # (re)start a daemon that is not running (one stopping as we started, or one that died), until the node is up
  local state="" i
  for i in $(seq "$WAIT"); do
    running slurmctld || slurmctld || die 3 "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
    running slurmd || slurmd || die 3 "slurmd did not start (see $LOG_DIR/slurmd.log)"
    stable || continue
    state=$(node_state)
    case "$state" in
      idle|mixed|allocated) say "ready: node $(hostname -s) $state ($(sinfo -h -N -o '%c CPUs, %m MB'))"; return 0 ;;
      down*|drain*|fail*) scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true ;;
    esac
  done
  running slurmctld || die 3 "slurmctld does not stay up (see $LOG_DIR/slurmctld.log)"
  running slurmd || die 3 "slurmd does not stay up (see $LOG_DIR/slurmd.log)"
  die 4 "node not idle after ${WAIT} s (state '${state:-none}'; see $LOG_DIR/slurmctld.log and slurmd.log)"
}

usable() { case "$(node_state)" in idle|mixed|allocated) return 0 ;; esac; return 1; }

main() {
  # a SLURM we may not (not root) or should not (not our configuration) touch: only report
  if command -v sinfo >/dev/null 2>&1 && usable && { [ "$(id -u)" -ne 0 ] || ! grep -qsF "$MARK" $CONF; }; then
    say "already running: node $(hostname -s) $(node_state) (left as it is)"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die 2 "SLURM is not running (no usable node in sinfo) and starting it needs root"
  install_packages
  start_munge
  write_conf
  start_daemons
  wait_idle
}

main "$@"

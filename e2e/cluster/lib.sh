# Shared by e2e/cluster/up and e2e/cluster/down. Sourced, not run.
# Everything a human should read goes to stderr; stdout is reserved for the
# two export lines that `up` prints.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The repo root, from where this file is (an inherited $ROOT is not trusted).
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${GEMMA_E2E_STATE:-$ROOT/.e2e/state}"
BINDIR="${GEMMA_E2E_BIN:-$ROOT/.e2e/bin}"
PLANE="$BINDIR/gemma-plane"
# A file in every state dir we create: `down` and the stale-state cleanup only
# ever delete a folder that carries it.
MARKER=".gemma-e2e-state"

log() { echo "${0##*/}: $*" >&2; }
die() { echo "${0##*/}: error: $*" >&2; exit 1; }

# pid_alive PID: running, not a zombie. Orphaned components are reaped by
# PID 1, which may take its time; a zombie has already stopped.
pid_alive() {
  local st
  st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "$st" && "$st" != Z ]]
}

# pid_is_ours PID: the process is alive and runs one of our commands, so a
# recycled pid (after a reboot, say) is never signalled.
pid_is_ours() {
  local pid="$1" cmd
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  pid_alive "$pid" || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *gemma-plane* || "$cmd" == *servingsim* ]]
}

# stop_recorded: stop every recorded process. The clients of etcd go first,
# so that the apiserver does not sit in its shutdown retrying a dead etcd;
# etcd goes last.
stop_recorded() {
  [[ -d "$STATE/pids" ]] || return 0
  local f name first=() last=()
  for f in "$STATE"/pids/*.pid; do
    [[ -e "$f" ]] || continue
    name="$(basename "$f" .pid)"
    if [[ "$name" == etcd ]]; then last+=("$f"); else first+=("$f"); fi
  done
  stop_pids "${first[@]}"
  stop_pids "${last[@]}"
}

# stop_pids PIDFILE...: TERM each recorded process group, wait up to 10 s,
# then KILL what is left. Each component was started with setsid, so its pid
# is also its process-group id and any children go with it.
stop_pids() {
  local f pid pids=() alive
  for f in "$@"; do
    pid="$(cat "$f" 2>/dev/null)" || continue
    if pid_is_ours "$pid"; then
      pids+=("$pid")
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  [[ ${#pids[@]} -gt 0 ]] || return 0
  local deadline=$((SECONDS + 10))
  while :; do
    alive=()
    for pid in "${pids[@]}"; do
      pid_alive "$pid" && alive+=("$pid")
    done
    [[ ${#alive[@]} -eq 0 ]] && return 0
    if ((SECONDS >= deadline)); then
      log "killing ${alive[*]} after 10 s"
      for pid in "${alive[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      done
      sleep 0.2
      return 0
    fi
    sleep 0.1
  done
}

# state_is_ours: the state dir is absent, empty, or carries our marker. Nothing
# in a dir that fails this is read, signalled or deleted.
state_is_ours() {
  [[ ! -e "$STATE" || -f "$STATE/$MARKER" || -z "$(ls -A "$STATE" 2>/dev/null)" ]]
}

require_state_is_ours() {
  state_is_ours ||
    die "$STATE exists but was not made by e2e/cluster/up (no $MARKER); not touching it (set GEMMA_E2E_STATE elsewhere or remove it)"
}

# remove_state: delete the state dir, but only one that we created.
remove_state() {
  require_state_is_ours
  rm -rf "$STATE"
}

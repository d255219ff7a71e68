#!/usr/bin/env bash
# bench/sip-load.sh — call setups per second through the gateway, side by side
# with Kamailio, on this machine, in one run (../shared/perf/side-by-side.sh).
#
# SIPp (uac, the carrier) -> hotline on udp 127.0.0.1:5070 -> SIPp (uas) on
# 127.0.0.1:5080, which plays the city sub-centre trunk: 12366 is a sub-centre
# line, so every call is routed by the table and placed as a second leg (a
# full B2BUA call: INVITE/100/180/200/ACK/BYE/200 on both legs).
#
# usage: bench/sip-load.sh [RATE_CPS] [DURATION_S] [HOLD_MS]
# env:   ANCHOR=false for signalling only (media not anchored; SDP relayed),
#        PERF_DIR (default ../shared/perf), RUST_LOG (default "info": per-call
#        log lines, as in production), QUIET_WAIT_S, GATEWAY_ONLY=1 to skip
#        the generator and Kamailio runs, PROFILE=FILE to record the gateway
#        with `perf record` into FILE (flat profile; figures then include
#        perf's own overhead, so do not quote them as throughput), BIN=PATH
#        to measure that binary (an earlier build, for a before/after).
# Builds the release binary first (a build beside a run ruins the figure).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PERF_DIR="${PERF_DIR:-$ROOT/../shared/perf}"
RATE="${1:-1000}"; DUR="${2:-20}"; HOLD="${3:-0}"

if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked -q)
  BIN="$ROOT/target/release/hotline"
fi

# The shipped table, with the SIP side on loopback ports the perf scripts use.
CONF_DIR="$(mktemp -d -t hotline-bench.XXXXXX)"
trap 'rm -rf "$CONF_DIR"' EXIT
# shellcheck source=bench/load-table.sh
source "$ROOT/bench/load-table.sh"
load_table "$ROOT" "$ROOT/recordings" "$CONF_DIR/bench.toml"
"$BIN" check "$CONF_DIR/bench.toml" >/dev/null

export RUST_LOG="${RUST_LOG:-info}"
export SUT_CMD="$BIN serve --config $CONF_DIR/bench.toml"
if [ -n "${PROFILE:-}" ]; then
  SUT_CMD="perf record -F 999 -o $PROFILE -- $SUT_CMD"
  GATEWAY_ONLY=1
fi
export SERVICE=12366
if [ "${GATEWAY_ONLY:-0}" = 1 ]; then
  exec "$PERF_DIR/sut-anchor.sh" "$RATE" "$DUR" "$HOLD"
fi
"$PERF_DIR/side-by-side.sh" "$RATE" "$DUR" "$HOLD"

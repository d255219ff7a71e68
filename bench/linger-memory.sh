#!/usr/bin/env bash
# bench/linger-memory.sh — what a finished call costs while its transactions
# linger (RFC 3261/6026 timers, 32 s): the gateway's PSS and
# hotline_lingering_calls every 5 s while SIPp places RATE calls/s for DUR s
# through it (the side-by-side load: carrier -> hotline -> sub-centre trunk,
# 12366, hold 0), then for AFTER_S s more while the remains run out.
#
# The memory per lingering call is the PSS slope between two samples of the
# load (calls in progress are few and steady at hold 0; the lingering ones
# grow by RATE each second).
#
# usage: bench/linger-memory.sh [RATE] [DUR] [AFTER_S]
# env:   BIN=PATH to measure that binary (else the release build is built).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PERF_DIR="${PERF_DIR:-$ROOT/../shared/perf}"
# shellcheck source=/dev/null
source "$PERF_DIR/lib.sh"
RATE="${1:-2000}"; DUR="${2:-10}"; AFTER="${3:-35}"
if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked -q)
  BIN="$ROOT/target/release/hotline"
fi
RUN="$(new_run_dir linger-memory)"
trap cleanup_started EXIT
# shellcheck source=bench/load-table.sh
source "$ROOT/bench/load-table.sh"
load_table "$ROOT" "$RUN" "$RUN/bench.toml"
"$BIN" check "$RUN/bench.toml" >/dev/null 2>&1
wait_quiet >/dev/null
"$SIPP" -sf "$PERF_DIR/uas_rr.xml" -i 127.0.0.1 -p 5080 -mp 16000 -nostdin -buff_size 4194304 \
  -default_behaviors all,-abortunexp >"$RUN/uas.out" 2>&1 &
STARTED_PIDS+=("$!")
(cd "$RUN" && RUST_LOG="${RUST_LOG:-info}" exec "$BIN" serve --config "$RUN/bench.toml") >"$RUN/gateway.log" 2>&1 &
GW=$!; STARTED_PIDS+=("$GW")
for ((i = 0; i < 100; i++)); do port_free 5070 || break; sleep 0.1; done
sleep 0.5
metric() { curl -s 127.0.0.1:19190/metrics | awk -v m="$1" '$1 == m {print $2}'; }
sample() {
  printf '%-10s pss_kb=%s lingering_call_ids=%s active_calls=%s\n' "$1" \
    "$(awk '/^Pss:/ {print $2}' /proc/"$GW"/smaps_rollup)" \
    "$(metric hotline_lingering_calls)" "$(metric hotline_active_calls)"
}
sample idle
# The samples, taken beside the load; the uac has a watchdog (it is
# killed by its PID if it outlives the load by 45 s).
( for ((t = 1; t <= DUR; t++)); do sleep 1; [ $((t % 5)) = 0 ] && sample "t=${t}s"; done ) &
SAMPLER=$!; STARTED_PIDS+=("$SAMPLER")
run_uac_timed "$RUN" uac $((DUR + 45)) -- \
  -sf "$PERF_DIR/uac_rr.xml" 127.0.0.1:5070 -s 12366 -i 127.0.0.1 -p 5060 -mp 17000 -nostdin \
  -buff_size 4194304 -default_behaviors all,-abortunexp -r "$RATE" -m $((RATE * DUR)) -l 20000 \
  -timeout $((DUR + 30))s -trace_stat -stf "$RUN/uac.csv" -fd 1
wait "$SAMPLER" 2>/dev/null || true
echo "calls ok=$(sipp_stat "$RUN/uac.csv" 'SuccessfulCall(C)') failed=$(sipp_stat "$RUN/uac.csv" 'FailedCall(C)') retransmissions=$(sipp_stat "$RUN/uac.csv" 'Retransmissions(C)')"
for ((t = 1; t <= AFTER; t++)); do sleep 1; [ $((t % 10)) = 0 ] && sample "after+${t}s"; done
echo "results_dir=$RUN"

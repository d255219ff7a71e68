#!/usr/bin/env bash
# bench/queue-burst.sh — a leader session announced on television: a burst of
# callers into the 12345 queue, through the real daemon, on loopback.
#
# CALLERS callers arrive within CALLERS/RATE seconds (default 1,000 in 2 s);
# SEATS seats (SIPp phones, registered with digest) take calls of TALK_MS
# each, one at a time, with a 1 s wrap-up. Every caller is answered by the
# gateway, hears the welcome, its place and hold music (RTP, echoed back by
# SIPp), and waits; put through, it takes the seat's BYE; still waiting after
# WAIT_MS it hangs up (an abandon, the second burst). Reported: SIPp's
# successful and failed calls and retransmissions (all must be clean), the
# most callers waiting at once, ENTERQUEUE lines in the queue log, RTP sent,
# and the gateway's CPU and peak memory.
#
# usage: bench/queue-burst.sh [CALLERS] [RATE_CPS] [SEATS] [WAIT_MS] [TALK_MS]
# Builds the release binary first; run it on an otherwise idle machine.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PERF_DIR="${PERF_DIR:-$ROOT/../shared/perf}"
# shellcheck source=/dev/null
source "$PERF_DIR/lib.sh"
CALLERS="${1:-1000}"; RATE="${2:-500}"; SEATS="${3:-20}"
WAIT_MS="${4:-20000}"; TALK_MS="${5:-1000}"

(cd "$ROOT" && cargo build --release --locked -q)
BIN="$ROOT/target/release/hotline"
RUN="$(new_run_dir queue-burst)"
trap cleanup_started EXIT

# The shipped table on loopback ports, with room for the whole burst in the
# general queue, a 1 s wrap-up, a queue log, and SEATS extra general seats.
sed -e 's|^listen_udp = .*|listen_udp = "127.0.0.1:5070"|' \
    -e 's|^listen_tcp = .*|listen_tcp = "off"|' \
    -e 's|^listen = "127.0.0.1:9090"|listen = "127.0.0.1:19190"|' \
    -e 's|^max_register_expires = \(.*\)|max_register_expires = \1\ntrunk_probe_interval_seconds = 0|' \
    -e 's|^prompts_dir = .*|prompts_dir = "'"$ROOT"'/prompts"|' \
    -e 's|^recordings_dir = .*|recordings_dir = "'"$RUN"'"|' \
    -e 's|^max_callers = 200$|max_callers = 5000|' \
    -e 's|^wrap_up_seconds = 10$|wrap_up_seconds = 1|' \
    -e 's|^# queue_log = .*|queue_log = "queue.log"|' \
    "$ROOT/routing.toml" >"$RUN/bench.toml"
for ((i = 1; i <= SEATS; i++)); do
  printf '\n[[seats]]\nid = "%d"\nskills = ["general"]\npassword = "bench-%d-pw"\n' \
    $((9000 + i)) $((9000 + i)) >>"$RUN/bench.toml"
done
"$BIN" check "$RUN/bench.toml" >/dev/null
grep -q '^queue_log = "queue.log"' "$RUN/bench.toml" || { echo "queue_log not set" >&2; exit 1; }

RUST_LOG="${RUST_LOG:-info}" "$BIN" serve --config "$RUN/bench.toml" >"$RUN/gateway.log" 2>&1 &
GW=$!
STARTED_PIDS+=("$GW")
for ((i = 0; i < 50; i++)); do
  curl -fsS http://127.0.0.1:19190/metrics >/dev/null 2>&1 && break
  sleep 0.1
done
metric() {
  curl -fsS http://127.0.0.1:19190/metrics | awk -v m="$1" '$1 == m { print $2 }'
}

# The seats: register each from its port, then answer on it.
reg="$RUN/register.xml"
sed -e 's/@EXPECT@/200/' "$ROOT/tests/sipp/register.xml" >"$reg.tmpl"
for ((i = 1; i <= SEATS; i++)); do
  id=$((9000 + i)); port=$((6100 + i))
  sed -e "s/@SEAT@/$id/" -e "s/@PASSWORD@/bench-$id-pw/" "$reg.tmpl" >"$reg"
  "$SIPP" -sf "$reg" -s "$id" -p "$port" -m 1 -timeout 10 127.0.0.1:5070 >/dev/null 2>&1 || true
done
for ((i = 0; i < 50; i++)); do
  [ "$(metric hotline_registered_seats)" = "$SEATS" ] && break
  sleep 0.2
done
[ "$(metric hotline_registered_seats)" = "$SEATS" ] || { echo "seats did not register" >&2; exit 1; }
sed -e "s/@TALK_MS@/$TALK_MS/" "$ROOT/bench/sipp/queue_seat.xml" >"$RUN/seat.xml"
for ((i = 1; i <= SEATS; i++)); do
  id=$((9000 + i)); port=$((6100 + i))
  "$SIPP" -sf "$RUN/seat.xml" -s "$id" -p "$port" -mp $((42000 + 4 * i)) \
    -m "$CALLERS" -timeout $((WAIT_MS / 1000 + 60)) 127.0.0.1:5070 \
    >"$RUN/seat-$id.out" 2>&1 &
  STARTED_PIDS+=("$!")
done

# The burst, watched every half second.
sed -e "s/@WAIT_MS@/$WAIT_MS/" "$ROOT/bench/sipp/queue_caller.xml" >"$RUN/caller.xml"
(
  while kill -0 "$GW" 2>/dev/null; do
    metric 'hotline_queue_callers{queue="general"}' >>"$RUN/waiting.txt" || true
    sleep 0.5
  done
) &
WATCH=$!
STARTED_PIDS+=("$WATCH")
t0_cpu=$(cpu_ticks "$GW"); t0=$(now_s); rtp0=$(metric 'hotline_rtp_packets_total{direction="sent"}')
run_uac_timed "$RUN" uac $((CALLERS / RATE + WAIT_MS / 1000 + 60)) -- \
  -sf "$RUN/caller.xml" -p 5061 -mp 41000 -rtp_echo -r "$RATE" -m "$CALLERS" \
  -l "$CALLERS" -timeout $((CALLERS / RATE + WAIT_MS / 1000 + 40)) \
  -trace_stat -stf "$RUN/uac.csv" -fd 1 -trace_err -error_file "$RUN/uac_err.log" \
  127.0.0.1:5070
t1_cpu=$(cpu_ticks "$GW"); t1=$(now_s); rtp1=$(metric 'hotline_rtp_packets_total{direction="sent"}')
sleep 3
summarize_uac "$RUN" uac "$RATE" "$CALLERS"
awk -v a="$t0_cpu" -v b="$t1_cpu" -v s="$t0" -v e="$t1" -v hz="$CLK_TCK" \
  'BEGIN { printf "gateway_cpu_pct_of_one_core=%.0f\n", 100 * (b - a) / hz / (e - s) }'
echo "gateway_peak_rss_kib=$(awk '/^VmHWM/ { print $2 }' /proc/"$GW"/status)"
echo "most_waiting=$(sort -n "$RUN/waiting.txt" | tail -1)"
echo "enterqueue=$(grep -c '"ENTERQUEUE"' "$RUN/queue.log" || true)"
echo "connect=$(grep -c '"CONNECT"' "$RUN/queue.log" || true)"
echo "abandon=$(grep -c '"ABANDON"' "$RUN/queue.log" || true)"
echo "rtp_sent=$(awk -v a="$rtp0" -v b="$rtp1" 'BEGIN { print b - a }')"
echo "queue_full=$(metric 'hotline_queue_calls_total{outcome="full",queue="general"}')"
echo "results in $RUN"

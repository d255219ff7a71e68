#!/usr/bin/env bash
# bench/media-load.sh — concurrent anchored calls with RTP both ways.
#
# SIPp (uac, the carrier, streaming G.711 u-law at 50 pps) -> hotline on udp
# 127.0.0.1:5070 -> SIPp (uas on :5080 playing the city sub-centre trunk,
# 12366, streaming back). Every packet crosses the gateway: it anchors both
# legs and relays with its own SSRC/sequence/timestamps. Uses the helpers and
# stream scenarios of ../shared/perf (the same load sipp-media.sh runs
# without a gateway, for the generator's own figure).
#
# usage: bench/media-load.sh [CONCURRENT] [HOLD_S]
#   calls arrive at CONCURRENT/HOLD_S per second for 2*HOLD_S seconds, so
#   about CONCURRENT calls are up at once for HOLD_S seconds.
# prints key=value lines (gateway CPU, CPU per relayed packet, packets,
# drops); exit 0 when every call succeeded.
# env: BIN=PATH runs that gateway binary instead of building this checkout
#      (before/after runs); PROFILE=FILE records the gateway with
#      `perf record` into FILE (its figures then include perf's overhead).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PERF_DIR_ARG="${PERF_DIR:-$ROOT/../shared/perf}"
. "$PERF_DIR_ARG/lib.sh"

N="${1:-200}"; HOLD="${2:-15}"
[ "$HOLD" -le 20 ] || { echo "HOLD_S must be <= 20" >&2; exit 2; }
SUT_PORT=5070; UAS_PORT=5080; UAC_PORT=5060; UAS_MP=16000; UAC_MP=17000
BUFF=4194304; BEHAVIORS="all,-abortunexp"
RATE=$(awk -v n="$N" -v h="$HOLD" 'BEGIN { r = n / h; printf "%.2f", (r < 0.1 ? 0.1 : r) }')
CALLS=$(awk -v r="$RATE" -v h="$HOLD" 'BEGIN { printf "%d", r * 2 * h + 0.5 }')

if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked -q) || exit 2
  BIN="$ROOT/target/release/hotline"
fi
RUN="$(new_run_dir "hotline-media-c$N")"
trap cleanup_started EXIT
trap 'cleanup_started; exit 130' INT TERM
for p in "$SUT_PORT" "$UAS_PORT" "$UAC_PORT" "$UAS_MP" "$UAC_MP"; do
  port_free "$p" || { echo "UDP port $p busy" >&2; exit 2; }
done
cd "$RUN" || exit 2
# Trunk probes off: the SIPp uas answers INVITEs only, and an OPTIONS it
# does not expect would mark its trunk down.
sed -e 's|^listen_udp = .*|listen_udp = "127.0.0.1:5070"|' \
    -e 's|^listen_tcp = .*|listen_tcp = "off"|' \
    -e 's|^listen = "127.0.0.1:9090"|listen = "127.0.0.1:19190"|' \
    -e 's|sip:127.0.0.1:5091|sip:127.0.0.1:5080|' \
    -e 's|^max_register_expires = \(.*\)|max_register_expires = \1\ntrunk_probe_interval_seconds = 0|' \
    -e 's|^prompts_dir = .*|prompts_dir = "'"$ROOT"'/prompts"|' \
    -e 's|^recordings_dir = .*|recordings_dir = "'"$ROOT"'/recordings"|' \
    -e 's|^rtp_ports = .*|rtp_ports = "30000-59999"|' \
    -e 's|^media_timeout_seconds = .*|media_timeout_seconds = 60|' \
    "$ROOT/routing.toml" >bench.toml
sox -n -r 8000 -c 1 -e u-law -t wav tone.wav synth 30 sine 440 2>/dev/null ||
  { echo "sox is needed for the tone (apt-get install sox)" >&2; exit 2; }

PRE_BUSY="$(wait_quiet)"
"$SIPP" -sf "$PERF_DIR/uas_stream.xml" -i 127.0.0.1 -p "$UAS_PORT" -mp "$UAS_MP" -nostdin \
  -buff_size "$BUFF" -default_behaviors "$BEHAVIORS" -trace_stat -stf "$RUN/uas.csv" -fd 1 \
  -trace_err -error_file "$RUN/uas_err.log" >"$RUN/uas.out" 2>&1 &
UAS_PID=$!; STARTED_PIDS+=("$UAS_PID")
SUT_CMD=("$BIN" serve --config bench.toml)
[ -n "${PROFILE:-}" ] && SUT_CMD=(perf record -F 999 -o "$PROFILE" -- "${SUT_CMD[@]}")
RUST_LOG="${RUST_LOG:-info}" "${SUT_CMD[@]}" >"$RUN/sut.log" 2>&1 &
SUT_PID=$!; STARTED_PIDS+=("$SUT_PID")
for _ in $(seq 50); do port_free "$SUT_PORT" || break; sleep 0.1; done
sleep 0.5
kill -0 "$SUT_PID" 2>/dev/null || { echo "hotline failed: $(tail -3 "$RUN/sut.log")" >&2; exit 2; }

snmp_udp() { awk -v f="$1" '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == f) c = i; h = 1 } else print $c }' /proc/net/snmp; }
pss_kb() { awk '/^Pss:/ {print $2}' /proc/"$1"/smaps_rollup 2>/dev/null; }
# The gateway's own PSS (perf's child when profiled), idle and at its peak
# while the calls are up: the memory an established call holds.
GW_PID="$SUT_PID"; [ -n "${PROFILE:-}" ] && GW_PID="$(pgrep -P "$SUT_PID" | head -1)"
PSS_IDLE=$(pss_kb "$GW_PID")
( peak=0; while kill -0 "$GW_PID" 2>/dev/null; do
    p=$(pss_kb "$GW_PID"); [ "${p:-0}" -gt "$peak" ] && { peak=$p; echo "$peak" >"$RUN/pss_peak"; }
    sleep 1; done ) &
PSS_SAMPLER=$!; STARTED_PIDS+=("$PSS_SAMPLER")
IN0=$(snmp_udp InDatagrams); DROP0=$(udp_rcvbuf_errors); T_S0=$(cpu_ticks "$SUT_PID"); W0=$(now_s); SYS0="$(sys_cpu_snap)"
run_uac_timed "$RUN" uac $(( 3 * HOLD + 40 )) -- \
  -sf "$PERF_DIR/uac_stream.xml" -d "$((HOLD * 1000))" 127.0.0.1:"$SUT_PORT" -s 12366 \
  -i 127.0.0.1 -p "$UAC_PORT" -mp "$UAC_MP" -nostdin -buff_size "$BUFF" -default_behaviors "$BEHAVIORS" \
  -r "$RATE" -m "$CALLS" -l "$(( N * 2 + 10 ))" -timeout "$(( 3 * HOLD + 30 ))s" \
  -trace_stat -stf "$RUN/uac.csv" -fd 1 -trace_err -error_file "$RUN/uac_err.log"
W1=$(now_s); T_S1=$(cpu_ticks "$SUT_PID"); SYS1="$(sys_cpu_snap)"; IN1=$(snmp_udp InDatagrams); DROP1=$(udp_rcvbuf_errors)
METRICS="$(curl -s 127.0.0.1:19190/metrics)"
TIMEOUTS=$(awk '/^hotline_media_timeouts_total/ {print $2}' <<<"$METRICS")
RTP_IN=$(awk '/^hotline_rtp_packets_total\{direction="received"\}/ {print $2}' <<<"$METRICS")
RTP_OUT=$(awk '/^hotline_rtp_packets_total\{direction="sent"\}/ {print $2}' <<<"$METRICS")
SUT_PSS=$(awk '/^Pss:/ {print $2}' /proc/"$SUT_PID"/smaps_rollup 2>/dev/null)
stop_pid "$SUT_PID" 10; stop_sipp "$UAS_PID"; STARTED_PIDS=()

echo "scenario=sipp-uac -> hotline (anchoring both legs) -> sipp-uas, G.711 both ways, hold ${HOLD}s, target $N concurrent"
summarize_uac "$RUN" uac "$RATE" "$CALLS"
echo "peak_concurrent_calls=$(awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "CurrentCall") c = i; next } { if ($c + 0 > m) m = $c + 0 } END { print m + 0 }' "$RUN/uac.csv")"
awk -v t="$((T_S1 - T_S0))" -v hz="$CLK_TCK" -v w0="$W0" -v w1="$W1" -v n="$N" \
  'BEGIN { c = 100 * t / hz / (w1 - w0); printf "sut_cpu_pct=%.0f\nsut_cpu_pct_per_100_calls=%.1f\n", c, c * 100 / n }'
echo "udp_datagrams_received=$((IN1 - IN0))"
awk -v d="$((IN1 - IN0))" -v w0="$W0" -v w1="$W1" 'BEGIN { printf "udp_datagrams_per_s_avg=%.0f\n", d / (w1 - w0) }'
echo "udp_rcvbuf_drops=$((DROP1 - DROP0))"
echo "media_timeouts=${TIMEOUTS:-NA}"
echo "gateway_rtp_received=${RTP_IN:-NA}"
echo "gateway_rtp_sent=${RTP_OUT:-NA}"
awk -v n="$((CALLS))" -v h="$HOLD" -v r="${RTP_IN:-0}" 'BEGIN { e = n * h * 50 * 2; printf "gateway_rtp_expected=%d\ngateway_rtp_received_ratio=%.3f\n", e, r / e }'
awk -v r="${RTP_IN:-0}" -v w0="$W0" -v w1="$W1" 'BEGIN { printf "gateway_packets_relayed_per_s_avg=%.0f\n", r / (w1 - w0) }'
# The gateway's CPU over the run (its setups included) per packet it relayed.
awk -v t="$((T_S1 - T_S0))" -v hz="$CLK_TCK" -v r="${RTP_IN:-0}" \
  'BEGIN { if (r > 0) printf "sut_cpu_us_per_relayed_packet=%.2f\n", 1e6 * t / hz / r }'
echo "sut_pss_kb=${SUT_PSS:-NA}"
PSS_PEAK=$(cat "$RUN/pss_peak" 2>/dev/null)
PEAK_CALLS=$(awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "CurrentCall") c = i; next } { if ($c + 0 > m) m = $c + 0 } END { print m + 0 }' "$RUN/uac.csv")
echo "sut_pss_idle_kb=${PSS_IDLE:-NA}"
echo "sut_pss_peak_kb=${PSS_PEAK:-NA}"
# An upper bound per established call: the calls that ended in the peak
# second still linger in it (a few KiB each, bench/linger-memory.sh).
awk -v p="${PSS_PEAK:-0}" -v i="${PSS_IDLE:-0}" -v n="$PEAK_CALLS" \
  'BEGIN { if (n > 0 && p > i) printf "sut_kib_per_established_call=%.1f\n", (p - i) / n }'

sys_cpu_report "$SYS0" "$SYS1"
echo "machine_busy_before_run_pct=$PRE_BUSY"
echo "results_dir=$RUN"
ok=$(sipp_stat "$RUN/uac.csv" 'SuccessfulCall(C)')
[ "$ok" = "$CALLS" ] && [ "$(sipp_stat "$RUN/uac.csv" 'FailedCall(C)')" = 0 ]

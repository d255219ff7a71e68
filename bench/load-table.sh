# bench/load-table.sh — sourced by the whole-call load scripts
# (sip-load.sh, linger-memory.sh): the shipped table set up for the
# ../shared/perf load.
#
# load_table ROOT RECORDINGS_DIR OUT writes the shipped routing.toml with
# the SIP side on the loopback ports the perf scripts use (the gateway on
# udp 127.0.0.1:5070, the city sub-centre trunk — SIPp's uas — on 5080,
# metrics on 19190), no TCP, and:
# - trunk probes off: the SIPp uas answers INVITEs only, and an OPTIONS it
#   does not expect would mark its trunk down;
# - RTP ports 20000-59999 (20,000 legs): a hiccup of a second at 3,000
#   setups/s holds 6,000 legs' ports, and the shipped 5,000 would refuse
#   calls for want of one;
# - media anchored unless ANCHOR=false.
load_table() {
  local root="$1" recordings="$2" out="$3"
  sed -e 's|^listen_udp = .*|listen_udp = "127.0.0.1:5070"|' \
      -e 's|^listen_tcp = .*|listen_tcp = "off"|' \
      -e 's|^listen = "127.0.0.1:9090"|listen = "127.0.0.1:19190"|' \
      -e 's|sip:127.0.0.1:5091|sip:127.0.0.1:5080|' \
      -e 's|^max_register_expires = \(.*\)|max_register_expires = \1\ntrunk_probe_interval_seconds = 0|' \
      -e 's|^prompts_dir = .*|prompts_dir = "'"$root"'/prompts"|' \
      -e 's|^recordings_dir = .*|recordings_dir = "'"$recordings"'"|' \
      -e 's|^anchor = .*|anchor = '"${ANCHOR:-true}"'|' \
      -e 's|^rtp_ports = .*|rtp_ports = "20000-59999"|' \
      "$root/routing.toml" >"$out"
}

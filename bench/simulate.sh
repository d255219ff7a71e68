#!/usr/bin/env bash
# hotline simulate at two scales, whole-process time and peak memory:
#
# - zhuzhou: the shipped table with 31 more general seats (40 in all) on the
#   shipped profile (about 2,000 calls a day), exponential patience 180 s;
# - province: the shipped table plus 20 queues with skills (p01..p20, one
#   whole-merge line each, 96001..96020), 1,500 seats (75 per queue, each
#   with its queue's skill and the next queue's as a second skill), and a
#   profile of 300,000 calls a day over those lines in the shipped day's
#   shape, patience 180 s.
#
# Usage: bench/simulate.sh [RUNS]   (default 3 runs each; the best is kept)
# Build first (cargo build --release); the machine otherwise idle.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
bin=target/release/hotline
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
out=target/bench-simulate
mkdir -p "$out"
mkdir -p "$out/recordings" "$out/requests"
cp -r prompts "$out/"

python3 - "$out" <<'PY'
import csv, io, sys
out = sys.argv[1]
shipped = open("routing.toml", encoding="utf-8").read()

def seat(i, skills):
    sk = ", ".join(f'"{s}"' for s in skills)
    return f'[[seats]]\nid = "{i}"\nname = "seat {i}"\nskills = [{sk}]\npassword = "bench-seat-password-{i}"\n\n'

# Zhuzhou: 40 seats.
z = shipped + "\n" + "".join(seat(8300 + k, ["general"]) for k in range(1, 32))
open(f"{out}/zhuzhou.toml", "w", encoding="utf-8").write(z)

# Province: 20 queues, 20 lines, 1,500 seats.
p = [shipped, "\n"]
for q in range(1, 21):
    p.append(f'[[queues]]\nid = "p{q:02d}"\nname = "queue {q}"\nskill = "p{q:02d}"\n'
             f'strategy = "longest_idle"\nwrap_up_seconds = 10\nservice_level_seconds = 20\n'
             f'max_callers = 2000\nmax_wait_seconds = 900\n\n')
for q in range(1, 21):
    p.append(f'[[lines]]\nnumber = "960{q:02d}"\nname = "line {q}"\nunit = "市政府办公室（市长公开电话办公室）"\n'
             f'mode = "whole_merge"\nqueue = "p{q:02d}"\n\n')
n = 0
for q in range(1, 21):
    other = q % 20 + 1
    for k in range(75):
        n += 1
        p.append(seat(90000 + n, [f"p{q:02d}", f"p{other:02d}"]))
open(f"{out}/province.toml", "w", encoding="utf-8").write("".join(p))

# The province profile: the shipped day's shape, 300,000 calls.
rows = [r for r in csv.reader(l for l in open("sim/profile.csv") if not l.startswith("#"))]
shape = [sum(float(x) for x in r[1:]) for r in rows[1:]]
total = sum(shape)
lines = ["start," + ",".join(f"960{q:02d}" for q in range(1, 21))]
for r, s in zip(rows[1:], shape):
    per = 300000 * s / total / 20
    lines.append(r[0] + "," + ",".join(f"{per:.2f}" for _ in range(20)))
open(f"{out}/province.csv", "w").write("\n".join(lines) + "\n")
PY

for t in zhuzhou province; do
  "$bin" check "$out/$t.toml" >/dev/null 2>&1 || "$bin" check "$out/$t.toml"
done

measure() {
  local name=$1; shift
  local best= rss=
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" > "$out/$name.json"
    read -r secs kb < "$out/time.txt"
    if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; rss=$kb; fi
  done
  python3 - "$out/$name.json" "$name" "$best" "$rss" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); s = d["summary"]
print(f"{sys.argv[2]}: {s['calls']} calls, {s['offered']} offered, {s['answered']} answered, "
      f"SL {s['service_level']}, ASA {s['asa_seconds']} s, occupancy {s['occupancy']}; "
      f"best of runs {sys.argv[3]} s wall, peak RSS {int(sys.argv[4]) // 1024} MiB")
PY
}

measure zhuzhou taskset -c 0 "$bin" simulate --config "$out/zhuzhou.toml" --date 2026-12-02 \
  --patience-seconds 180 --seed 1 --json
measure province taskset -c 0 "$bin" simulate --config "$out/province.toml" --date 2026-12-02 \
  --profile "$out/province.csv" --patience-seconds 180 --seed 1 --json

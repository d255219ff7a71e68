#!/usr/bin/env bash
# Regenerate the Mandarin voice prompts of the hotline gateway.
#
# Output: one WAV per prompt in this directory, 8000 Hz, 16-bit signed PCM,
# mono (the native format of the gateway's media engine).
#
# Needs espeak-ng and sox (Debian/Ubuntu: apt-get install espeak-ng sox).
# This script installs nothing itself. It can be run from any directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

missing=()
for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "generate.sh: missing tool(s): ${missing[*]}" >&2
    echo "generate.sh: install them with: apt-get install espeak-ng sox" >&2
    exit 1
fi

# Voice: Mandarin. "cmn-latn-pinyin" is the same Mandarin voice as "cmn",
# except for how it reads Latin letters. With espeak-ng 1.51 (Debian 12), the
# plain "cmn" voice reads the pinyin that its dictionary produces as
# *English* ("您" comes out as "nin two"). "cmn-latn-pinyin" reads it
# correctly. Use plain cmn only if the pinyin voice is missing.
VOICE=cmn-latn-pinyin
if ! espeak-ng --voices=cmn 2>/dev/null | grep -q 'cmn-Latn-pinyin'; then
    VOICE=cmn
fi
SPEED=150

tmpdir="$(mktemp -d)"
trap 'rm -rf "$tmpdir"' EXIT

# Speak TEXT with espeak-ng and write NAME.wav in the gateway format.
# sox effects, in order: trim the silence espeak-ng leaves at both ends
# (about 0.4 s at the end, which would make fragments joined with digits,
# such as "您前面还有" + 三 + "位来电者在等候", sound halting), peak-normalise
# to -3 dBFS so all prompts play at the same level, resample to 8 kHz with the very-high-quality resampler,
# then pad a fixed 50 ms of silence before and 200 ms after.
say() {
    local name="$1" text="$2"
    espeak-ng -v "$VOICE" -s "$SPEED" -w "$tmpdir/tmp.wav" "$text"
    sox -R "$tmpdir/tmp.wav" -r 8000 -b 16 -c 1 -e signed-integer "$name.wav" \
        silence 1 0.005 0.1% reverse silence 1 0.005 0.1% reverse \
        gain -n -3 rate -v 8000 pad 0.05 0.2
    rm -f "$tmpdir/tmp.wav"
    echo "  $name.wav"
}

echo "Generating prompts in $(pwd) (espeak-ng voice $VOICE, speed $SPEED)"

# Numbers are written as Chinese characters: espeak-ng reads "12345" as a
# (wrong) quantity, while the hotline's name is spoken digit by digit, with
# 幺 for 1 as usual in telephony: "幺二三四五".
say welcome               "您好，欢迎致电幺二三四五政务服务便民热线。"
say merged_into_12345     "您拨打的号码已并入幺二三四五政务服务便民热线，正在为您转接。"
say queue_position        "您前面还有"
say queue_callers         "位来电者在等候"
# "约为" would be read with the wrong tone (wèi), so plain "约" is used.
say estimated_wait        "预计等待时间约"
say minutes               "分钟"
say please_hold           "坐席正忙，请您稍候。"
say leader_session_choice "现在是热线问政时间，部门负责人正在接听来电。继续等待请按一，登记回电工单请按二。"
say ticket_created        "您的诉求已登记，工单号是"
say ticket_due            "承办部门将在三个工作日内办理并回复您。"
say transfer_notice       "正在为您转接，请稍候。"
say emergency_redirect    "正在为您转接紧急服务。"
say goodbye               "感谢您的来电，再见。"

# The queue (ACD). Position: 您前面还有 + numeral + 位来电者在等候, or, for the
# caller at the head, you_are_next. Wait: 预计等待时间约 + numeral + 分钟, or
# under a minute 预计等待时间不到 + 一 + 分钟.
say you_are_next          "您是下一位，请稍候。"
say estimated_wait_under  "预计等待时间不到"
# Overflow "busy" (queue full, wait too long), and join_empty "busy" (no
# seat logged in), each before the gateway hangs up.
say queue_busy            "当前坐席全忙，请您稍后再拨。"
say queue_unavailable     "现在没有坐席可以接听，请您稍后再拨。"
# The caller's queue was removed by a reload, or it overflowed into another.
say queue_moved           "正在为您转接，请继续等候。"
# Answers to a seat's pause and resume feature codes (*51, *50).
say seat_paused           "您已暂停接听。"
say seat_resumed          "您已恢复接听。"
# A three-way call (*3 + number + #) that could not be made: the number
# reaches nothing, or the party refused or did not answer. To the seat.
say three_way_failed      "三方通话未能接通。"

# The leader session's ticket (热线问政工单): the callback number, the
# spoken request, the number read back, the due date as a count of working
# days (承办部门将在 + numeral + 个工作日内办理并回复您), and a store that failed.
say ticket_confirm_number "由本机号码回电请按一，使用其他号码请输入号码后按井号键。"
say ticket_key_number     "请输入回电号码，以井号键结束。"
say ticket_number_invalid "号码有误，请重新输入。"
say ticket_record_request "请在提示音后说出您的诉求，说完请按井号键。"
say ticket_existing       "您已有一张正在办理的工单，工单号是"
say ticket_due_in         "承办部门将在"
say ticket_due_days       "个工作日内办理并回复您。"
say ticket_unavailable    "系统暂时无法登记工单，请您稍后再拨。"
say leader_session_over   "本次热线问政已经结束，为您登记回电工单。"

# Callbacks (回访) of done tickets. To the seat first, before the citizen is
# dialled: callback_whisper + the ticket's digits. To the citizen after the
# seat hung up: the survey, then thanks.
say callback_whisper      "回访工单"
say callback_not_reached  "市民未能接通，本次回访已记录。"
say callback_survey       "请您对本次办理结果进行评价，满意请按一，不满意请按二。"
say callback_thanks       "感谢您的评价，再见。"
# Queue callbacks (virtual hold): offered when the wait is long (press *),
# then, once the ticket is stored and its number read, the promise.
say queue_callback_offer      "如不想等待，请按星号键，我们将按您的排队顺序给您回电。"
say queue_callback_registered "我们将按您的排队顺序给您回电，请保持电话畅通。"
say queue_callback_whisper   "预约回电工单"
# A queue that overflows to a callback (overflow = "callback"): why, before
# the callback number is asked, then the promise after the ticket's number.
say callback_later            "当前坐席全忙，为您登记回电。"
say callback_later_registered "坐席空闲后我们将尽快给您回电，请保持电话畅通。"

# Digits for reading back ticket numbers and counts; 1 is 幺 (yāo), the
# telephony convention that keeps it distinct from 七 (qī) on a poor line.
digits=(零 幺 二 三 四 五 六 七 八 九)
for i in "${!digits[@]}"; do
    say "digit_$i" "${digits[$i]}"
done

# Numerals for counts (positions, minutes), joined into Mandarin numbers:
# 二十三 is num_2 num_10 num_3, 两百零五 is num_liang num_100 num_0 num_5.
# Unlike the digits above, 1 is 一 (yī): 一百, 十一, 不到一分钟. 两 (liǎng) is
# 2 as a count before a measure word or 百/千/万 (两位, 两分钟, 两千).
numerals=(零 一 二 三 四 五 六 七 八 九)
for i in "${!numerals[@]}"; do
    say "num_$i" "${numerals[$i]}"
done
say num_liang             "两"
say num_10                "十"
say num_100               "百"
say num_1000              "千"
say num_10000             "万"

# Hold music: not speech. Four soft sine chords (I-vi-IV-V in C major, kept
# above ~290 Hz so they survive the narrow telephone band), 2.5 s each with
# gentle fade in/out, played twice: 20 s that start and end in near silence
# so the file loops without a click. Peak -12 dBFS.
chords=(
    "E4 G4 C5"   # C major
    "E4 A4 C5"   # A minor
    "F4 A4 C5"   # F major
    "D4 G4 B4"   # G major
)
parts=()
n=0
for chord in "${chords[@]}"; do
    read -r a b c <<<"$chord"
    f="$tmpdir/chord$n.wav"
    sox -R -n -r 8000 -b 16 -c 3 "$f" synth 2.5 sine "$a" sine "$b" sine "$c" \
        remix - fade h 0.5 2.5 0.8
    parts+=("$f")
    n=$((n + 1))
done
sox -R "${parts[@]}" "${parts[@]}" -r 8000 -b 16 -c 1 -e signed-integer hold_music.wav \
    gain -n -12
echo "  hold_music.wav"

# The tone before a recording starts: 1 kHz, 0.3 s, -9 dBFS, faded.
sox -R -n -r 8000 -b 16 -c 1 -e signed-integer beep.wav synth 0.3 sine 1000 \
    fade h 0.01 0.3 0.01 gain -n -9 pad 0.05 0.1
echo "  beep.wav"

echo "Done."

#!/usr/bin/env bash
# Time for the libFuzzer `device` target to find each mutant of the zoo from an EMPTY corpus, as
# a markdown table for docs/fuzzing.md (the libFuzzer half of issue 5's "finds at least 80% within
# 60 s"). A mutant is found when the target crashes with "mutant found: RULE" (the divergence);
# the crash input is then run once on the conformant emulator, which must not crash ("yes"), so
# a false alarm of the model is not counted as the mutant's.
#
#   scripts/libfuzzer-time-to-find.sh [SEED] [CAP_SECONDS] [-- EXTRA_LIBFUZZER_OPTIONS...]
#   # defaults: seed 7, 60 s; options below (DEFAULT_OPTS)
#
# Needs nightly and cargo-fuzz; builds the target with `cargo +nightly fuzz build -O device`
# (ASan, cargo-fuzz's default) unless SMMU_LIBFUZZER_DEVICE names a built binary (e.g. one built
# with `-s none`). Costs up to CAP_SECONDS of one core per mutant (36 mutants): run it niced.
set -euo pipefail
seed=7
cap=60
if [ $# -gt 0 ] && [ "$1" != "--" ]; then seed="$1"; shift; fi
if [ $# -gt 0 ] && [ "$1" != "--" ]; then cap="$1"; shift; fi
if [ $# -gt 0 ] && [ "$1" = "--" ]; then shift; fi
# Why these options (docs/fuzzing.md, "libFuzzer time to find"): the generator reads its choices
# from the input, so short inputs give programs too short to map, probe, change and invalidate;
# -len_control=0 lets inputs grow to -max_len at once instead of after thousands of runs.
# -use_value_profile=1 gives libFuzzer feedback on the comparisons that pick choices.
DEFAULT_OPTS=(-use_value_profile=1 -len_control=0 -max_len=800)
extra=("$@")
[ ${#extra[@]} -gt 0 ] || extra=("${DEFAULT_OPTS[@]}")

root="$(cd "$(dirname "$0")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
conform="${SMMU_CONFORM:-$target_dir/release/smmu-conform}"
[ -x "$conform" ] || { echo "libfuzzer-time-to-find: build first: cargo build --release -p smmu-conform" >&2; exit 2; }
dev="${SMMU_LIBFUZZER_DEVICE:-}"
if [ -z "$dev" ]; then
    (cd "$root" && cargo +nightly fuzz build -O device) >&2 ||
        { echo "libfuzzer-time-to-find: cargo +nightly fuzz build -O device failed" >&2; exit 2; }
    dev="$target_dir/x86_64-unknown-linux-gnu/release/device"
fi
[ -x "$dev" ] || { echo "libfuzzer-time-to-find: no device target binary at $dev" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "| mutant | time to find (wall) | CPU | executions | first rule broken | crash input passes on the emulator |"
echo "| --- | --- | --- | --- | --- | --- |"
# user + system CPU seconds of one run, from /usr/bin/time's output file.
cpu() { [ -f "$work/$1/cpu" ] && tail -1 "$work/$1/cpu" | awk '{printf "%.1f s", $1 + $2}'; }
found=0
total=0
for m in $("$conform" mutants --list | awk '{print $1}'); do
    total=$((total + 1))
    mkdir -p "$work/$m/corpus" "$work/$m/crash"
    log="$work/$m/log"
    t0="$(date +%s.%N)"
    # Empty corpus directory: libFuzzer starts from nothing and writes new inputs there.
    # CPU time too: on a shared machine it is the comparable figure (wall time waits for others).
    timer=()
    [ ! -x /usr/bin/time ] || timer=(/usr/bin/time -f '%U %S' -o "$work/$m/cpu")
    SMMU_FUZZ_BACKEND="mutant:$m" "${timer[@]}" "$dev" "${extra[@]}" -seed="$seed" -max_total_time="$cap" \
        -print_final_stats=1 -rss_limit_mb=4096 -artifact_prefix="$work/$m/crash/" \
        "$work/$m/corpus" >/dev/null 2>"$log" || true
    t1="$(date +%s.%N)"
    crash="$(ls "$work/$m/crash/" 2>/dev/null | head -1)"
    if [ -z "$crash" ] || ! grep -q 'mutant found: ' "$log"; then
        runs="$(awk '/stat::number_of_executed_units/ {print $NF}' "$log")"
        if [ -n "$crash" ]; then
            why="$(grep -m1 -E 'panicked|ERROR: libFuzzer' "$log" || true)"
            echo "| \`$m\` | not found: other crash ($why) | | ${runs:-?} | | |"
        else
            echo "| \`$m\` | not found in ${cap} s | $(cpu "$m") | ${runs:-?} | | |"
        fi
        continue
    fi
    secs="$(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}')"
    runs="$(awk '/stat::number_of_executed_units/ {print $NF}' "$log")"
    rule="$(grep -m1 -o 'mutant found: [A-Z0-9-]*' "$log" | awk '{print $3}')"
    if SMMU_FUZZ_BACKEND=emulator "$dev" -runs=1 "$work/$m/crash/$crash" >/dev/null 2>&1; then
        ok=yes
        found=$((found + 1))
    else
        ok="NO (false alarm)"
    fi
    echo "| \`$m\` | $secs s | $(cpu "$m") | ${runs:-?} | $rule | $ok |"
done
echo
echo "$found of $total mutants found within ${cap} s each (seed $seed; libFuzzer options: ${extra[*]})."

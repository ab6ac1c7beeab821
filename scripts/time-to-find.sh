#!/usr/bin/env bash
# Time to find each mutant of the zoo with the stable campaign from an empty corpus, as a
# markdown table for docs/fuzzing.md. Each finding is checked to be the mutant's: its shrunk
# case must pass on the conformant emulator (a false alarm would fail there too).
#
#   scripts/time-to-find.sh [SEED] [CAP]      # defaults: seed 7, cap 60s
#
# Costs up to CAP per mutant of one core (36 mutants); run it niced on a shared machine.
set -euo pipefail
seed="${1:-7}"
cap="${2:-60s}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SMMU_CONFORM:-${CARGO_TARGET_DIR:-$root/target}/release/smmu-conform}"
[ -x "$bin" ] || { echo "time-to-find: build first: cargo build --release -p smmu-conform" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "| mutant | time to find | executions | first rule broken | finding passes on the emulator |"
echo "| --- | --- | --- | --- | --- |"
found=0
total=0
for m in $("$bin" mutants --list | awk '{print $1}'); do
    total=$((total + 1))
    log="$work/$m.log"
    "$bin" fuzz --backend "mutant:$m" --time "$cap" --seed "$seed" --stop-at-first \
        --out "$work/$m" >/dev/null 2>"$log" || true
    line="$(grep -m1 '^FOUND ' "$log" || true)"
    if [ -z "$line" ]; then
        echo "| \`$m\` | not found in $cap | | | |"
        continue
    fi
    # FOUND RULE at execution N after T s: ...
    rule="$(echo "$line" | awk '{print $2}')"
    exec_n="$(echo "$line" | awk '{print $5}')"
    secs="$(echo "$line" | awk '{print $7}')"
    case_file="$(ls "$work/$m"/*.case | head -1)"
    if "$bin" run --case "$case_file" >/dev/null 2>&1; then
        ok=yes
        found=$((found + 1))
    else
        ok="NO (false alarm)"
    fi
    echo "| \`$m\` | $secs s | $exec_n | $rule | $ok |"
done
echo
echo "$found of $total mutants found within $cap (seed $seed)."

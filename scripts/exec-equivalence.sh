#!/usr/bin/env bash
# In-process against over-the-protocol verdicts on fuzz inputs (docs/protocol.md,
# "Equivalence"). Builds the release binaries, then replays N seeded inputs of the `device` fuzz
# target on every backend (the reference emulator and its 36 mutants by default) in lockstep
# with the same backend served over the protocol (every answer compared), and judges the first
# M (default: all N) on both paths with the model (every verdict compared).
#
#   scripts/exec-equivalence.sh [--inputs N] [--verdicts M] [--seed S] [--log FILE]
#                               [--no-steps] [BACKEND...]
#   scripts/exec-equivalence.sh --forwarders [--inputs N] [--seed S] [--log FILE] [FWD...]
#
# --log FILE appends one line per backend as it finishes (a stopped run keeps what it did);
# --no-steps serves without the `steps` capability (one request per trace step).
#
# Exit status: 0 all equal, 1 a difference, 2 could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p smmu-conform --bins
cargo build --release -q -p smmu-conform-fuzz --example exec_equivalence
exec "$target/release/examples/exec_equivalence" --serve "$(realpath "$target")/release/smmu-conform-serve" "$@"

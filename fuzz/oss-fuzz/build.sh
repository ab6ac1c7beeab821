#!/bin/bash -eu
# OSS-Fuzz build: cargo-fuzz builds every target with -O (release, debug assertions on);
# binaries go to $OUT with their seed corpora zipped beside them as NAME_seed_corpus.zip.
cd "$SRC/smmu-conform"
cargo fuzz build -O
# fuzz/ is a workspace member, so the binaries land in the workspace target directory
# (CARGO_TARGET_DIR when set).
FUZZ_BIN=$(dirname "$(find "${CARGO_TARGET_DIR:-.}" -path '*/x86_64-unknown-linux-gnu/release/device' -type f | head -n1)")
# The in-process targets; `qemu` needs a QEMU binary at run time, which the runner image lacks.
for t in decode device forwarder; do
  cp "$FUZZ_BIN/$t" "$OUT/"
  (cd "corpus/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
done

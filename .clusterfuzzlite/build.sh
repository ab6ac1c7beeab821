#!/bin/bash -eu
# ClusterFuzzLite build: same as fuzz/oss-fuzz/build.sh, run from the checked-out tree.
cd "$SRC/smmu-conform"
cargo fuzz build -O
# fuzz/ is a workspace member, so the binaries land in the workspace target directory.
FUZZ_BIN=$(dirname "$(find . -path '*/x86_64-unknown-linux-gnu/release/device' -type f | head -n1)")
for t in decode device; do
  cp "$FUZZ_BIN/$t" "$OUT/"
  (cd "corpus/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
done

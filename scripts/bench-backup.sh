#!/usr/bin/env bash
# End-to-end backup benchmark (issue 4): about 1 GiB in 20,000 files over ssh on loopback with
# the tar plugin, full and no-change incremental, against `tar | zstd -3` and a second
# `rsync -a`. usage: scripts/bench-backup.sh [FILES] [TOTAL_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --peers
command -v zstd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends zstd
cargo build -q --release -p hoard --bin hoard --example bench_backup
HOARD_BIN=target/release/hoard exec ./target/release/examples/bench_backup "$@"

#!/usr/bin/env bash
# rsync transport benchmark (issue 7): about 1 GiB in 20,000 files over ssh on loopback with
# the rsync plugin (full, no-change incremental, incremental after 2% of the files were
# edited), bytes received from the client and wall time, against rsync -a's own runs.
# usage: scripts/bench-rsync.sh [FILES] [TOTAL_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --peers
cargo build -q --release -p hoard --bin hoard --example bench_rsync
HOARD_BIN=target/release/hoard exec ./target/release/examples/bench_rsync "$@"

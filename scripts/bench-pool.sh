#!/bin/sh
# Benchmark of the pool (hoard-pool): ingest vs the single-core BLAKE3+zstd-3 limit, a million
# small files, an incremental with 1% changed, listing 100k entries, and pool size vs restic.
# Scale down with BENCH_INGEST_MIB=... BENCH_SMALL_FILES=...; BENCH_DIR sets the work dir.
set -eu
cd "$(dirname "$0")/.."
if ! command -v restic >/dev/null 2>&1; then
    echo "restic not found: apt-get install -y restic (the size comparison is skipped without it)" >&2
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/pool-bench}"
cargo build --release -p hoard-pool --example bench
exec "$CARGO_TARGET_DIR/release/examples/bench" "$@"

#!/usr/bin/env bash
# Plugin boundary benchmark (issue 2): guest-memory and host-side-copy throughput, plugin
# load times, and an exec stream over ssh on loopback read by a plugin. Release build.
# usage: scripts/bench-plugin.sh [SSH_SIZE, default 20G]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --peers
cargo build -q --release -p hoard --example plugin_bench
exec ./target/release/examples/plugin_bench "${1:-20G}"

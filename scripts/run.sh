#!/usr/bin/env bash
# The quick start's main job: builds hoard and its built-in plugins, then shows what it loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build -q -p hoard
exec ./target/debug/hoard --config "${HOARD_CONFIG:-config-examples/quickstart}" plugin list "$@"

#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, checks formatting and lints,
# then runs every test of the workspace (real sshd and friends are started by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --peers

echo "== format"
cargo fmt --all --check
(cd plugins && cargo fmt --all --check)

echo "== lint"
cargo clippy --workspace --all-targets -q -- -D warnings
(cd plugins && cargo clippy --workspace --target wasm32-wasip2 -q --target-dir ../target/wasm -- -D warnings)

echo "== tests"
cargo test --workspace -q
# The plugins' pure parts (parsers, argument lists) have native unit tests.
(cd plugins && cargo test -q --workspace --target x86_64-unknown-linux-gnu --target-dir ../target/plugins-native)

#!/usr/bin/env bash
# Installs what building and testing hoard needs on a fresh Debian machine with rustup:
# the wasm32-wasip2 target (plugins are WebAssembly components) and, with --peers, the Debian
# packages of the test peers (sshd, rsync, ...). Idempotent and quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi

if [ "${1:-}" = "--peers" ]; then
  bash conformance/scripts/install-peers.sh
fi

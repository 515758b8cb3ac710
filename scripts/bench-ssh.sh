#!/bin/bash
# Streams SIZE bytes from the conformance kit's sshd peer through hoard's SshClient and prints
# MB/s and peak RSS.  usage: scripts/bench-ssh.sh [SIZE] [zero|cat]   (default 20G zero)
#   zero: remote `head -c SIZE /dev/zero`, read to the end
#   cat:  SIZE bytes fed to a remote `cat` and read back at the same time
set -euo pipefail
cd "$(dirname "$0")/.."
conformance/scripts/install-peers.sh
cargo build --release -p hoard --example ssh_stream
BIN="${CARGO_TARGET_DIR:-target}/release/examples/ssh_stream"
exec "$BIN" "${1:-20G}" "${2:-zero}"

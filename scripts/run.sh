#!/usr/bin/env bash
# The quick start's main job: builds hoard with its built-in plugins, backs up this machine's
# /usr/share/doc with the tar plugin into a local pool (the built-in quick-start config, used
# when /etc/hoard does not exist; pool in ~/.local/share/hoard/pool), then shows the backup.
# Run it again for an incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build -q -p hoard
hoard=./target/debug/hoard
"$hoard" plugin list
"$hoard" backup localhost
"$hoard" list localhost
echo "--- hoard ls localhost /usr/share/doc (first lines)"
"$hoard" ls localhost /usr/share/doc | head -n 10

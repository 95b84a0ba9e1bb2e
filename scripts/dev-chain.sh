#!/usr/bin/env bash
# The main job (for now): build the node and run a one-validator development chain that
# polkadot.js apps can connect to at ws://127.0.0.1:9944. Ctrl-C stops it; the chain lives
# in a temporary directory and starts afresh each time. Extra arguments go to the node.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. scripts/env.sh
cargo build --release --locked -p capsule-node
echo "Connect polkadot.js apps to ws://127.0.0.1:9944 (https://polkadot.js.org/apps/?rpc=ws://127.0.0.1:9944)"
exec "$CARGO_TARGET_DIR/release/capsule-node" --dev --tmp --rpc-port 9944 "$@"

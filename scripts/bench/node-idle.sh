#!/usr/bin/env bash
# Measures an idle `capsule-node --dev`: resident memory after N blocks (default 100), the
# binary's size, and the time those blocks took. Prints one line per figure for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
blocks=${1:-100}
node="$CARGO_TARGET_DIR/release/capsule-node"
[ -x "$node" ] || { echo "build the node first: cargo build --release -p capsule-node" >&2; exit 1; }

dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$node" --dev --base-path "$dir" --rpc-port 0 --prometheus-port 0 --no-telemetry --no-mdns \
  --listen-addr /ip4/127.0.0.1/tcp/0 2>"$dir/log" &
pid=$!
start=$SECONDS
until prom=$(grep -o 'Prometheus exporter started at [0-9.:]*' "$dir/log" | awk '{print $NF}'); [ -n "$prom" ]; do
  sleep 0.5; kill -0 "$pid" || { cat "$dir/log"; exit 1; }
done
height() { curl -s "http://$prom/metrics" | awk -F' ' '/^substrate_block_height\{.*status="best"/ {print $2}'; }
while h=$(height); [ "${h:-0}" -lt "$blocks" ]; do sleep 3; done
rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
printf 'binary size: %s MiB\n' "$(( $(stat -c %s "$node") / 1048576 ))"
printf 'blocks: %s in %ss\n' "$(height)" "$(( SECONDS - start ))"
printf 'idle RSS after %s blocks: %s MiB\n' "$blocks" "$(( rss_kib / 1024 ))"

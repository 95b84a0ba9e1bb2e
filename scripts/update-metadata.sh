#!/usr/bin/env bash
# Refreshes the runtime metadata the chain client's typed API is generated from
# (offchain-workers/chain-client/metadata/capsule.scale): builds the release node, starts a
# throwaway dev chain on a free loopback port, asks it for metadata V16 and writes the bytes.
# Run it after any change to the runtime's calls, storage, events or runtime APIs; the chain
# client's tests fail until the file matches the node.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build --release --locked -p capsule-node
node_bin="$CARGO_TARGET_DIR/release/capsule-node"
out=offchain-workers/chain-client/metadata/capsule.scale
base=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$base"' EXIT
"$node_bin" --dev --base-path "$base" --rpc-port 0 --prometheus-port 0 --no-mdns --no-telemetry \
  --listen-addr /ip4/127.0.0.1/tcp/0 2> "$base/node.log" &
pid=$!
for _ in $(seq 120); do
  addr=$(grep -o 'Running JSON-RPC server: addr=[0-9.:]*' "$base/node.log" | head -1 | sed 's/.*addr=//') || true
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$base/node.log" >&2; echo "the dev node exited" >&2; exit 1; }
  sleep 0.5
done
[ -n "${addr:-}" ] || { echo "the dev node did not announce its RPC address" >&2; exit 1; }
# Metadata_metadata_at_version(16) answers Option<OpaqueMetadata>: strip the option byte and the
# compact length to get the RuntimeMetadataPrefixed bytes subxt reads.
python3 - "$addr" "$out" <<'PY'
import json, sys, urllib.request
addr, out = sys.argv[1], sys.argv[2]
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "state_call",
                   "params": ["Metadata_metadata_at_version", "0x10000000"]}).encode()
req = urllib.request.Request(f"http://{addr}", body, {"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(req))
if "error" in answer:
    sys.exit(f"state_call failed: {answer['error']}")
raw = bytes.fromhex(answer["result"][2:])
if raw[0] != 1:
    sys.exit("the node offers no metadata V16")
# SCALE compact length: modes 0/1/2 are 1/2/4 bytes with the value in the upper bits; mode 3
# is a byte ((n - 4) << 2 | 3) followed by n little-endian bytes.
mode = raw[1] & 3
if mode == 3:
    skip = 1 + (raw[1] >> 2) + 4
    length = int.from_bytes(raw[2:skip + 1], "little")
else:
    skip = {0: 1, 1: 2, 2: 4}[mode]
    length = int.from_bytes(raw[1:1 + skip], "little") >> 2
metadata = raw[1 + skip:]
if len(metadata) != length or metadata[:4] != b"meta":
    sys.exit("the node's answer is not one metadata blob")
open(out, "wb").write(metadata)
print(f"wrote {out}: {len(metadata)} bytes")
PY

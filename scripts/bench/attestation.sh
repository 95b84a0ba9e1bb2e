#!/usr/bin/env bash
# HPC attestation figures: the agent (static musl) and the attestation server as real processes
# on a network-namespace pair, 100 challenges at a 50 ms mean interval, then one violation of
# each kind. Prints the challenge-to-verified latency (p50, p99), the violation-to-power-cycle
# latency (p99), and the agent's RSS and binary size. Needs root (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
cargo test --release --locked --manifest-path offchain-workers/Cargo.toml -p capsule-gateway \
  --test attestation -- --nocapture 2>&1 | grep -E "challenge-to-verified|violation-to-power-cycle|detected:"

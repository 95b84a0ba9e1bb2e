#!/usr/bin/env bash
# Fuzzes the capsule parser and opener with cargo-fuzz (libFuzzer), which needs the nightly
# toolchain: installs nightly and cargo-fuzz if missing, then runs the `open_capsule` target.
# Usage: scripts/fuzz-capsule.sh [seconds, default 60]. Crashes land in
# offchain-workers/capsule-format/fuzz/artifacts/; the corpus grows in fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")/../offchain-workers/capsule-format"
seconds=${1:-60}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
# Its own target dir: fuzz builds are instrumented and would evict the shared one's artifacts.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capsule-target}/fuzz"
cargo +nightly fuzz run open_capsule -- -max_total_time="$seconds"

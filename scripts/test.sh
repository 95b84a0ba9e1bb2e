#!/usr/bin/env bash
# Every test: unit tests, golden vectors, and the tests against real dev nodes (the fixture
# starts release `capsule-node --dev` processes; the @polkadot/api suite runs inside one).
# One profile (release) builds the node and the tests, so the runtime wasm is built once.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/dockerd-up.sh
. scripts/env.sh
cargo test --release --locked --workspace "$@"
# Our pallets' benchmarks, run once each as tests against their mocks (the runtime's weights come
# from scripts/bench/weights.sh). SKIP_WASM_BUILD: nothing here needs the runtime.
SKIP_WASM_BUILD=1 cargo test --release --locked -p pallet-attestation -p pallet-deposit -p pallet-reputation -p pallet-task-market \
  --features runtime-benchmarks --lib benchmarking "$@"
# The daemons' workspace (docs/adr/0004), once it exists.
if [ -f offchain-workers/Cargo.toml ]; then
  cargo test --release --locked --manifest-path offchain-workers/Cargo.toml --workspace "$@"
  # The root of trust's hardware backends: TPM against swtpm, Zymbit's loader (no module here);
  # the agent's reports with TPM quotes.
  cargo test --release --locked --manifest-path offchain-workers/Cargo.toml -p capsule-root-of-trust \
    --features tpm,zymbit "$@"
  cargo test --release --locked --manifest-path offchain-workers/Cargo.toml -p capsule-agent \
    --features tpm --test tpm_report "$@"
  cargo test --release --locked --manifest-path offchain-workers/Cargo.toml -p capsule-gateway \
    --features tpm --test tpm_attestation --test pxe_uefi_tpm "$@"
fi

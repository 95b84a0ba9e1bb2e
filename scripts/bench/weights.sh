#!/usr/bin/env bash
# Generates the weights of one pallet from benchmarks run on our runtime (docs/weights.md).
#
#   scripts/bench/weights.sh pallet_balances    # a FRAME pallet  -> runtime/src/weights/pallet_balances.rs
#   scripts/bench/weights.sh pallet_deposit     # one of ours     -> pallets/deposit/src/weights.rs
#   scripts/bench/weights.sh pallet_deposit pallet_reputation   # several, one runtime build
#
# It builds the runtime with `runtime-benchmarks` in a target directory of its own (so the
# everyday build keeps its artifacts), installs frame-omni-bencher once, and runs it over the
# runtime's wasm. STEPS and REPEAT override the sample counts (defaults 50 and 20).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh

[ $# -gt 0 ] || { echo "usage: scripts/bench/weights.sh <pallet_name>..." >&2; exit 2; }
steps=${STEPS:-50}
repeat=${REPEAT:-20}
omni_version=0.28.0   # the frame-omni-bencher of polkadot-sdk stable2609 (frame-benchmarking-cli 64)
tools=${CAPSULE_TOOLS_DIR:-$HOME/.cache/capsule-tools}
bench_target=${CAPSULE_BENCH_TARGET_DIR:-$HOME/.cache/capsule-bench-target}
bencher=$tools/bin/frame-omni-bencher

if ! "$bencher" --version 2>/dev/null | grep -q "$omni_version"; then
  # The bencher links RocksDB, whose bindings bindgen generates with libclang.
  if ! ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1; then
    echo "installing libclang-dev (frame-omni-bencher builds RocksDB bindings with bindgen)"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo=sudo; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
  fi
  echo "installing frame-omni-bencher $omni_version into $tools (once; it compiles for a while)"
  CARGO_TARGET_DIR="$bench_target/tools" cargo install --quiet frame-omni-bencher \
    --version "=$omni_version" --root "$tools"
fi

echo "building capsule-runtime with runtime-benchmarks"
CARGO_TARGET_DIR="$bench_target" cargo build --release --locked -p capsule-runtime \
  --features runtime-benchmarks
wasm="$bench_target/release/wbuild/capsule-runtime/capsule_runtime.compact.compressed.wasm"

for pallet in "$@"; do
  own_pallet=${pallet#pallet_}
  own_pallet_dir="pallets/${own_pallet//_/-}"   # pallet_task_market -> pallets/task-market
  if [ -d "$own_pallet_dir/src" ]; then
    output="$own_pallet_dir/src/weights.rs"
    template=(--template scripts/bench/pallet-weight-template.hbs)
  else
    mkdir -p runtime/src/weights
    output="runtime/src/weights/$pallet.rs"
    template=()   # the CLI's own template: `impl <pallet>::WeightInfo for WeightInfo<T>`
  fi

  "$bencher" v1 benchmark pallet \
    --runtime "$wasm" \
    --genesis-builder-preset development \
    --pallet "$pallet" --extrinsic '*' \
    --steps "$steps" --repeat "$repeat" \
    --header scripts/bench/weights-header.txt \
    "${template[@]}" \
    --output "$output"
  # The header records the command; keep this machine's directories out of the repository.
  sed -i -e "s|$bencher|frame-omni-bencher|" -e "s|$bench_target/|<bench-target>/|" "$output"
  echo "wrote $output"
done

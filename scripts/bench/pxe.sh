#!/usr/bin/env bash
# PXE boot figures under TCG: power-on to attested (p50 of BOOTS boots, default 5), the image's
# size and the boot server's RSS, for the image with the container engine and without it.
# Builds both images (pxe-image/build.sh), then boots each in QEMU. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
with="$CARGO_TARGET_DIR/pxe-image"
without="$CARGO_TARGET_DIR/pxe-image-without-engine"
./pxe-image/build.sh --out "$with"
./pxe-image/build.sh --out "$without" --without-engine
for variant in with without; do
  dir=$with; [ "$variant" = without ] && dir=$without
  echo "== image $variant the container engine"
  CAPSULE_PXE_IMAGE_DIR=$dir cargo test --release --locked --manifest-path offchain-workers/Cargo.toml \
    -p capsule-gateway --test pxe_bench -- --ignored --nocapture 2>&1 | grep -E "^boot|^boots"
done

#!/usr/bin/env bash
# Installs what building and testing capsule needs on a Debian/Ubuntu machine, skipping what
# is already there: apt packages, the pinned Rust toolchain (rust-toolchain.toml), and the
# JavaScript test dependencies. Safe to run again. Run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Command → Debian package that provides it.
declare -A needs=(
  [cc]=build-essential         # C and C++ (binaryen's wasm-opt, ring, zstd...)
  [c++]=build-essential
  [make]=build-essential
  [protoc]=protobuf-compiler   # litep2p's protobuf definitions
  [clang]=clang                # C parts of some -sys crates
  [mold]=mold                  # the linker .cargo/config.toml asks for
  [node]=nodejs                # @polkadot/api tests
  [npm]=npm
  [age]=age                    # interop tests of capsules with the reference age tool
  [dockerd]=docker.io          # the task executor's engine (API 1.41)
  [runsc]=runsc                # gVisor, the engine's runtime for light tasks on a gateway
  [nft]=nftables               # egress allowlists and the cleanup evidence's ruleset
  [ip]=iproute2                # task links (egress) and the tests' network namespaces
  [swtpm]=swtpm                # the TPM 2.0 emulator the root-of-trust tests run against
  [swtpm_setup]=swtpm-tools    # manufactures its EK and EK certificate
  [tpm2_createek]=tpm2-tools   # by hand, for debugging TPM tests
  [cpio]=cpio                  # the HPC image's initramfs (pxe-image/build.sh)
  [objcopy]=binutils           # its unified kernel image
  [zstd]=zstd                  # its compression
  [python3]=python3            # its PE header (fixed time stamp and checksum)
  [qemu-system-x86_64]=qemu-system-x86   # the HPC in the PXE tests (TCG)
  [dnsmasq]=dnsmasq-base       # the gateway's boot server (DHCP, TFTP)
  [git]=git
  [curl]=curl
  [pkg-config]=pkg-config
)
missing=()
for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needs[$cmd]}")
done
[ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
[ -e /usr/include/tss2/tss2_esys.h ] || missing+=(libtss2-dev)   # tss-esapi (the TPM backend)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
[ -e /usr/lib/ipxe/undionly.kpxe ] || missing+=(ipxe)           # iPXE for BIOS PXE clients, served by TFTP
[ -e /usr/lib/ipxe/qemu/efi-virtio.rom ] || missing+=(ipxe-qemu) # the VM's own PXE ROMs
[ -e /usr/share/OVMF/OVMF_CODE_4M.fd ] || missing+=(ovmf)       # UEFI firmware for the UEFI PXE path
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if ! command -v rustup >/dev/null 2>&1; then
  log "installing rustup (then the toolchain pinned in rust-toolchain.toml)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --default-toolchain none
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
# Installs the pinned version with its targets and components if any is missing.
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
installed_targets=$(rustup target list --installed --toolchain "$toolchain")
for target in wasm32v1-none wasm32-unknown-unknown x86_64-unknown-linux-musl; do
  grep -qx "$target" <<<"$installed_targets" || rustup target add --toolchain "$toolchain" "$target"
done
rustup component add --toolchain "$toolchain" rust-src clippy rustfmt >/dev/null 2>&1

js=node/tests/js
if [ ! -d "$js/node_modules/@polkadot/api" ] || [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
  log "installing the @polkadot/api test dependencies"
  npm ci --prefix "$js" --no-audit --no-fund --loglevel=error
fi
ipfs=offchain-workers/capsule-store/tests/js
if [ ! -d "$ipfs/node_modules/ipfs-unixfs-importer" ] || [ "$ipfs/package-lock.json" -nt "$ipfs/node_modules/.package-lock.json" ]; then
  log "installing the IPFS reference importer (CID interop tests)"
  npm ci --prefix "$ipfs" --no-audit --no-fund --loglevel=error
fi
log "ready"

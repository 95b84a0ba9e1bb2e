#!/usr/bin/env bash
# Builds the HPC boot image, the same for every gateway, reproducibly:
#   vmlinuz     Debian's kernel, as packaged
#   initrd.zst  busybox, the kernel modules in modules.list, capsule-agent and /init, as a sorted
#               newc cpio with fixed owners and times, zstd-compressed (no timestamps)
#   cmdline     the kernel command line
#   boot.efi    all three as one unified kernel image on Debian's systemd-boot EFI stub: UEFI
#               firmware measures the whole of it into PCR4, and its SHA-256 is the golden HPC
#               image measurement
#   manifest.json  every file's SHA-256 and size, the command line and the packages used
# BIOS clients boot vmlinuz, initrd.zst and cmdline through iPXE: the same parts.
#
# Packages come from debs.lock (name, version, SHA-256). While Debian's archive serves those
# versions they are used and checked; when one is gone the build re-resolves it, rewrites the lock
# and says so. `--update` re-resolves every package.
#
# Usage: pxe-image/build.sh [--update] [--out DIR] [--without-engine]
#   --without-engine leaves the container engine out (for measuring what it costs; such an
#   image attests but runs no task).
#   DIR defaults to $CARGO_TARGET_DIR/pxe-image. Downloads are cached in $CAPSULE_PXE_CACHE
#   (default ~/.cache/capsule-pxe). Reproducibility across clones: pxe-image/reproducible.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$repo/scripts/env.sh"

update=false
engine=true
out="$CARGO_TARGET_DIR/pxe-image"
while [ $# -gt 0 ]; do
  case $1 in
    --update) update=true ;;
    --out) out=$2; shift ;;
    --without-engine) engine=false ;;
    *) echo "usage: $0 [--update] [--out DIR] [--without-engine]" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '\033[1m[pxe-image]\033[0m %s\n' "$*" >&2; }

cache=${CAPSULE_PXE_CACHE:-$HOME/.cache/capsule-pxe}
lock="$here/debs.lock"
cmdline=$(grep -v '^#' "$here/cmdline" | tr -s ' \n' ' ' | sed 's/ $//')
# Every time inside the image: the last commit, so two clones of one commit agree.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}
export LC_ALL=C TZ=UTC
umask 022

# --- packages -----------------------------------------------------------------------------
# The roles the image needs; the kernel is whatever Debian's linux-image-amd64 depends on.
resolve() {
  case $1 in
    kernel) apt-cache depends --no-recommends --no-suggests linux-image-amd64 |
              sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1 ;;
    busybox) echo busybox-static ;;
    stub) echo systemd-boot-efi ;;
    # The agent's shared libraries (it quotes through tpm2-tss, which dlopen()s its TCTI).
    libc) echo libc6 ;;
    libgcc) echo libgcc-s1 ;;
    libssl) echo libssl3 ;;
    tss-esys) echo libtss2-esys-3.0.2-0 ;;
    tss-sys) echo libtss2-sys1 ;;
    tss-mu) echo libtss2-mu0 ;;
    tss-tctildr) echo libtss2-tctildr0 ;;
    tss-device) echo libtss2-tcti-device0 ;;
    # The container engine (started on the first task) and what the executor runs beside it;
    # the other roles are packages of the same name: their shared libraries.
    engine) echo docker.io ;;
    *) echo "$1" ;;
  esac
}
candidate() { apt-cache policy "$1" | sed -n 's/^ *Candidate: //p'; }
# The engine's programs: package and path inside it.
engine_programs=(engine:usr/sbin/dockerd containerd:usr/bin/containerd
  containerd:usr/bin/containerd-shim-runc-v2 runc:usr/sbin/runc nftables:usr/sbin/nft
  iproute2:bin/ip tini:usr/bin/tini-static)
libraries=(libc libgcc libssl tss-esys tss-sys tss-mu tss-tctildr tss-device
  libsystemd0 libdevmapper1.02.1 libseccomp2 libnftables1 libnftnl11 libmnl0 libjansson4 libgmp10
  libxtables12 libedit2 libbsd0 libmd0 libtinfo6 liblzma5 libzstd1 liblz4-1 libcap2 libgcrypt20
  libgpg-error0 libselinux1 libpcre2-8-0 libudev1 libelf1 libbpf1 zlib1g)
roles=(kernel busybox stub engine containerd runc nftables iproute2 tini "${libraries[@]}")

mkdir -p "$cache/debs"
# apt needs its package lists (a fresh machine may have none yet).
[ -n "$(apt-cache policy busybox-static | sed -n 's/^ *Candidate: //p' | grep -v '(none)')" ] ||
  { log "updating apt's package lists"; apt-get update -qq; }
declare -A pkg ver sum debs
if [ -f "$lock" ]; then
  while read -r role name version sha; do
    case $role in ''|'#'*) continue ;; esac
    pkg[$role]=$name ver[$role]=$version sum[$role]=$sha
  done <"$lock"
fi

# Fetches $role's package into the cache; prints its path. Returns 1 when the archive no
# longer serves that version.
fetch() {
  local role=$1 name=${pkg[$1]} version=${ver[$1]}
  local file
  file="$cache/debs/${name}_${version//:/%3a}_amd64.deb"
  if [ ! -f "$file" ]; then
    (cd "$cache/debs" && apt-get download -q "$name=$version" >/dev/null 2>&1) || return 1
  fi
  echo "$file"
}

rewrite=false
for role in "${roles[@]}"; do
  if $update || [ -z "${pkg[$role]:-}" ]; then
    pkg[$role]=$(resolve "$role"); ver[$role]=$(candidate "${pkg[$role]}"); sum[$role]=
    rewrite=true
  fi
  if ! file=$(fetch "$role"); then
    old="${pkg[$role]} ${ver[$role]}"
    pkg[$role]=$(resolve "$role"); ver[$role]=$(candidate "${pkg[$role]}"); sum[$role]=
    log "the archive no longer serves $old: re-resolved $role to ${pkg[$role]} ${ver[$role]}; debs.lock rewritten (commit it)"
    rewrite=true
    file=$(fetch "$role") || { log "cannot download ${pkg[$role]} ${ver[$role]}: run apt-get update"; exit 1; }
  fi
  actual=$(sha256sum "$file" | cut -d' ' -f1)
  if [ -z "${sum[$role]}" ]; then
    sum[$role]=$actual
  elif [ "$actual" != "${sum[$role]}" ]; then
    log "$(basename "$file") has SHA-256 $actual, but debs.lock says ${sum[$role]}: the archive changed a published version; refusing to build"
    exit 1
  fi
  debs[$role]=$file
done
if $rewrite; then
  {
    echo "# The HPC image's Debian packages: role, package, version, SHA-256 of the .deb."
    echo "# Written by pxe-image/build.sh; used as long as Debian's archive serves them."
    for role in "${roles[@]}"; do echo "$role ${pkg[$role]} ${ver[$role]} ${sum[$role]}"; done
  } >"$lock"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for role in "${roles[@]}"; do
  mkdir -p "$work/deb/$role"
  dpkg-deb -x "${debs[$role]}" "$work/deb/$role"
done
kver=${pkg[kernel]#linux-image-}
kroot="$work/deb/kernel"

# --- the agent ----------------------------------------------------------------------------
# With TPM quotes (Debian's tpm2-tss, so linked against glibc: its TCTI loader dlopen()s the
# device TCTI), and with every build path remapped, so the binary does not depend on where the
# clone or the target directory is. Its shared libraries come from the locked packages.
log "building capsule-agent (TPM quotes through tpm2-tss)"
agent_target="$CARGO_TARGET_DIR/pxe-agent"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
RUSTFLAGS="-C strip=symbols --remap-path-prefix=$repo=/capsule --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$agent_target=/target" \
  cargo build --release --locked --quiet -p capsule-agent --features tpm --target x86_64-unknown-linux-gnu \
  --manifest-path "$repo/offchain-workers/Cargo.toml" --target-dir "$agent_target"
agent="$agent_target/x86_64-unknown-linux-gnu/release/capsule-agent"
# The holder of a networked task's namespace (static, like every function).
log "building pause (static, musl)"
RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols --remap-path-prefix=$repo=/capsule --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$agent_target=/target" \
  cargo build --release --locked --quiet -p capsule-functions --bin pause --target x86_64-unknown-linux-musl \
  --manifest-path "$repo/offchain-workers/Cargo.toml" --target-dir "$agent_target"
pause="$agent_target/x86_64-unknown-linux-musl/release/pause"

# --- the initramfs ------------------------------------------------------------------------
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,etc,var,lib/modules/"$kver"}
ln -s ../run "$root/var/run"
install -m 0755 "$work/deb/busybox/bin/busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$agent" "$root/bin/capsule-agent"
$engine && install -m 0755 "$pause" "$root/bin/pause"
# The agent's libraries: what it and they need (ELF NEEDED), plus the device TCTI, taken from
# the locked library packages into /lib/x86_64-linux-gnu (the dynamic loader's own directory).
libdir=lib/x86_64-linux-gnu
mkdir -p "$root/$libdir" "$root/lib64"
find_lib() {
  local role found
  for role in "${libraries[@]}"; do
    found=$(find "$work/deb/$role" -name "$1" \( -type f -o -type l \) | head -n1)
    [ -n "$found" ] || continue
    # Follows links inside the package's tree (an absolute target is the package's, not ours).
    while [ -L "$found" ]; do
      target=$(readlink "$found")
      case $target in
        /*) found=$work/deb/$role$target ;;
        *) found=$(dirname "$found")/$target ;;
      esac
    done
    echo "$found"; return
  done
  log "no locked package has $1 (add its package to the library roles)"; return 1
}
needed() { objdump -p "$1" | awk '$1 == "NEEDED" { print $2 }'; }
# The engine's programs, in /bin (the agent starts the engine with rootfs/engine-up).
engine_bins=()
$engine || engine_programs=()
for program in "${engine_programs[@]}"; do
  role=${program%%:*} path=${program#*:}
  install -m 0755 "$work/deb/$role/$path" "$root/bin/$(basename "$path")"
  engine_bins+=("$work/deb/$role/$path")
done
if $engine; then
  ln -s tini-static "$root/bin/docker-init"   # the init the executor runs its functions under
  install -m 0755 "$here/rootfs/engine-up" "$root/bin/engine-up"
fi
queue=(libtss2-tcti-device.so.0 ld-linux-x86-64.so.2)
for binary in "$agent" "${engine_bins[@]}"; do queue+=($(needed "$binary")); done
declare -A copied=()
while [ ${#queue[@]} -gt 0 ]; do
  soname=${queue[0]} queue=("${queue[@]:1}")
  [ -z "${copied[$soname]:-}" ] || continue
  file=$(find_lib "$soname")
  install -m 0755 "$file" "$root/$libdir/$soname"
  copied[$soname]=1
  queue+=($(needed "$file"))
done
ln -s "../$libdir/ld-linux-x86-64.so.2" "$root/lib64/ld-linux-x86-64.so.2"
install -m 0755 "$here/rootfs/init" "$root/init"
install -m 0755 "$here/rootfs/udhcpc.script" "$root/etc/udhcpc.script"
# Modules in load order (insmod, no depmod inside the image).
: >"$root/lib/modules/$kver/load-order"
while read -r module; do
  case $module in ''|'#'*) continue ;; esac
  path=$(cd "$kroot/lib/modules/$kver" && find kernel -name "$module.ko" | head -n1)
  [ -n "$path" ] || { log "module $module is not in $kver (modules.list)"; exit 1; }
  install -D -m 0644 "$kroot/lib/modules/$kver/$path" "$root/lib/modules/$kver/$path"
  echo "$path" >>"$root/lib/modules/$kver/load-order"
done <"$here/modules.list"
# Fixed times and owners; entries sorted by name; device nodes made by devtmpfs at boot.
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$root" && find . -mindepth 1 | sort | cpio --quiet -o -H newc --reproducible -R 0:0) \
  | zstd -q -19 -T1 --no-progress >"$work/initrd.zst"

# --- the unified kernel image ---------------------------------------------------------------
cp "$kroot/boot/vmlinuz-$kver" "$work/vmlinuz"
printf '%s' "$cmdline" >"$work/cmdline"
printf 'ID=capsule-hpc\nNAME="Capsule HPC"\nVERSION_ID=%s\n' "$kver" >"$work/os-release"
stub="$work/deb/stub/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
# Sections after the stub's own, each aligned to 4 KiB, in the order systemd's ukify uses.
align() { echo $(( ($1 + 4095) / 4096 * 4096 )); }
end=0
while read -r size vma; do
  (( 0x$vma + 0x$size > end )) && end=$(( 0x$vma + 0x$size ))
done < <(objdump -h -w "$stub" | awk '$1 ~ /^[0-9]+$/ { print $3, $4 }')
base=$(( 0x$(objdump -p "$stub" | awk '/^ImageBase/ { print $2 }') ))
offset=$(align $((end - base)))
args=()
for section in osrel:os-release cmdline:cmdline initrd:initrd.zst linux:vmlinuz; do
  name=${section%%:*} file=$work/${section#*:}
  args+=(--add-section ".$name=$file" --change-section-vma ".$name=$(printf '0x%x' $((base + offset)))")
  offset=$(align $((offset + $(stat -c %s "$file"))))
done
objcopy "${args[@]}" "$stub" "$work/boot.efi"
# objcopy stamps PE files with the current time: put SOURCE_DATE_EPOCH there, and the PE
# checksum over the result.
python3 - "$work/boot.efi" <<'PY'
import struct, sys, os
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
pe = struct.unpack_from("<I", data, 0x3C)[0]
struct.pack_into("<I", data, pe + 8, int(os.environ["SOURCE_DATE_EPOCH"]) & 0xFFFFFFFF)
field = pe + 24 + 64
struct.pack_into("<I", data, field, 0)
padded = data + b"\0" * (len(data) % 2)
total = 0
for (word,) in struct.iter_unpack("<H", padded):
    total += word
    total = (total & 0xFFFF) + (total >> 16)
struct.pack_into("<I", data, field, (total & 0xFFFF) + len(data))
open(path, "wb").write(data)
PY

# --- output -------------------------------------------------------------------------------
mkdir -p "$out"
for f in vmlinuz initrd.zst cmdline boot.efi; do install -m 0644 "$work/$f" "$out/$f"; done
entry() { printf '"%s": {"sha256": "%s", "bytes": %s}' "$1" "$(sha256sum "$out/$1" | cut -d' ' -f1)" "$(stat -c %s "$out/$1")"; }
{
  echo "{"
  echo "  \"golden\": \"$(sha256sum "$out/boot.efi" | cut -d' ' -f1)\","
  echo "  \"cmdline\": \"$cmdline\","
  echo "  \"kernel_release\": \"$kver\","
  echo "  \"files\": {"
  echo "    $(entry boot.efi),"
  echo "    $(entry vmlinuz),"
  echo "    $(entry initrd.zst),"
  echo "    $(entry cmdline)"
  echo "  },"
  echo "  \"packages\": ["
  for i in "${!roles[@]}"; do
    role=${roles[$i]}
    sep=,; [ "$i" -eq $((${#roles[@]} - 1)) ] && sep=
    echo "    {\"role\": \"$role\", \"name\": \"${pkg[$role]}\", \"version\": \"${ver[$role]}\", \"sha256\": \"${sum[$role]}\"}$sep"
  done
  echo "  ]"
  echo "}"
} >"$out/manifest.json"
log "golden image measurement $(sha256sum "$out/boot.efi" | cut -d' ' -f1) ($(stat -c %s "$out/boot.efi") bytes) in $out"

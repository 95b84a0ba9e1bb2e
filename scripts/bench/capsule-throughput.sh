#!/usr/bin/env bash
# Seal and open throughput of `capsule` against the `age` (Go, Debian's package) and `rage`
# (Rust, `cargo install rage`) tools on the same files: 1 MiB, 100 MiB and 1 GiB of random
# bytes in a RAM-backed directory, so the disk is not measured. Each figure is the best of
# RUNS runs (default 3), in MB/s of plaintext (10^6 bytes per second), one core each.
# Usage: scripts/bench/capsule-throughput.sh [sizes in MiB...]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
cargo build --release --locked --manifest-path offchain-workers/Cargo.toml -p capsule-cli >&2
capsule="$CARGO_TARGET_DIR/release/capsule"
command -v age >/dev/null || { echo "install age: apt-get install age" >&2; exit 1; }
rage=$(command -v rage || true)
[ -n "$rage" ] || echo "rage not found (cargo install rage): its columns stay empty" >&2
runs=${RUNS:-3}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1 100 1024)

work=$(mktemp -d /dev/shm/capsule-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$capsule" keygen -o "$work/key" >/dev/null
recipient=$(sed -n 's/^# public key: //p' "$work/key")

# Best wall-clock seconds of $runs runs of the command, which writes the file $1 (removed
# before each run, so every tool writes a new file rather than overwriting an old one).
best() {
  local out=$1 best_s=
  shift
  for _ in $(seq "$runs"); do
    local start end s
    rm -f "$out"
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    s=$(echo "$end - $start" | bc -l)
    if [ -z "$best_s" ] || [ "$(echo "$s < $best_s" | bc -l)" = 1 ]; then best_s=$s; fi
  done
  echo "$best_s"
}
rate() { echo "scale=0; $1 / $2 / 1000000" | bc -l; }

echo "| size | tool | seal MB/s | open MB/s |"
echo "| --- | --- | --- | --- |"
for mib in "${sizes[@]}"; do
  bytes=$((mib * 1024 * 1024))
  head -c "$bytes" /dev/urandom > "$work/plain"
  s=$(best "$work/c.cap" "$capsule" seal -r "$recipient" -o "$work/c.cap" "$work/plain")
  o=$(best "$work/c.out" "$capsule" open -i "$work/key" -o "$work/c.out" "$work/c.cap")
  cmp -s "$work/plain" "$work/c.out"
  echo "| $mib MiB | capsule | $(rate "$bytes" "$s") | $(rate "$bytes" "$o") |"
  s=$(best "$work/a.age" age -r "$recipient" -o "$work/a.age" "$work/plain")
  o=$(best "$work/a.out" age -d -i "$work/key" -o "$work/a.out" "$work/a.age")
  cmp -s "$work/plain" "$work/a.out"
  echo "| $mib MiB | age | $(rate "$bytes" "$s") | $(rate "$bytes" "$o") |"
  if [ -n "$rage" ]; then
    s=$(best "$work/r.age" "$rage" -r "$recipient" -o "$work/r.age" "$work/plain")
    o=$(best "$work/r.out" "$rage" -d -i "$work/key" -o "$work/r.out" "$work/r.age")
    cmp -s "$work/plain" "$work/r.out"
    echo "| $mib MiB | rage | $(rate "$bytes" "$s") | $(rate "$bytes" "$o") |"
  fi
  rm -f "$work"/*.out "$work"/*.age "$work"/*.cap
done

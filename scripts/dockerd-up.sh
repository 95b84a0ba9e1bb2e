#!/usr/bin/env bash
# Starts the Docker engine if it is not answering (machines without systemd, such as CI
# containers, have nobody else to start it) and waits until it does. Debian's docker.io speaks
# API 1.41. The engine's log: ~/.cache/capsule-dockerd.log.
set -euo pipefail
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# gVisor's runsc, registered as the runtime "runsc" (ptrace platform: no KVM needed; the
# task's seccomp profile enforced inside the sandbox; no network: Debian's 2022 runsc refuses
# to start its own network stack on kernels that namespace net.core.rmem_default, which it
# takes for the sign of the host's namespace).
config=/etc/docker/daemon.json
if command -v runsc >/dev/null && ! grep -q '"runsc"' "$config" 2>/dev/null; then
  if [ -s "$config" ]; then
    echo "$config exists without a runsc runtime: add {\"runtimes\": {\"runsc\": {\"path\": \"$(command -v runsc)\", \"runtimeArgs\": [\"--platform=ptrace\", \"--oci-seccomp\"]}}} to it" >&2
  else
    as_root mkdir -p /etc/docker
    as_root tee "$config" >/dev/null <<JSON
{"runtimes": {"runsc": {"path": "$(command -v runsc)", "runtimeArgs": ["--platform=ptrace", "--oci-seccomp", "--network=none"]}}}
JSON
    # A running engine rereads its runtimes on SIGHUP.
    if pid=$(pidof dockerd); then as_root kill -HUP "$pid"; sleep 1; fi
  fi
fi

docker info >/dev/null 2>&1 && exit 0
command -v dockerd >/dev/null || { echo "dockerd is missing: run scripts/setup.sh (it installs docker.io)" >&2; exit 1; }
log="$HOME/.cache/capsule-dockerd.log"
mkdir -p "$(dirname "$log")"
as_root setsid sh -c "nohup dockerd >>'$log' 2>&1 &" </dev/null
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not come up within 30 s; see $log" >&2
exit 1

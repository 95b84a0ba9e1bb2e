#!/usr/bin/env bash
# Starts the Docker engine if it is not answering (machines without systemd, such as CI
# containers, have nobody else to start it) and waits until it does. Debian's docker.io speaks
# API 1.41. The engine's log: ~/.cache/capsule-dockerd.log.
set -euo pipefail
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# gVisor's runsc, registered twice (ptrace platform: no KVM needed; the task's seccomp profile
# enforced inside the sandbox):
# - "runsc" with no network, for tasks that reach nothing: Debian's 2022 runsc refuses to start
#   its own network stack on kernels that namespace net.core.rmem_default, which it takes for
#   the sign of the host's namespace;
# - "runsc-hostinet" with the network stack of the namespace it starts in, for tasks with an
#   egress allowlist: the executor starts them in a holder's namespace whose only link is the
#   task's own, filtered by the task's nftables scope.
config=/etc/docker/daemon.json
runsc_config() {
  local runsc args='"--platform=ptrace", "--oci-seccomp"'
  runsc=$(command -v runsc)
  printf '{"runtimes": {"runsc": {"path": "%s", "runtimeArgs": [%s, "--network=none"]}, "runsc-hostinet": {"path": "%s", "runtimeArgs": [%s, "--network=host"]}}}\n' \
    "$runsc" "$args" "$runsc" "$args"
}
if command -v runsc >/dev/null && ! grep -q '"runsc-hostinet"' "$config" 2>/dev/null; then
  # Ours from before runsc-hostinet (one runsc runtime, nothing else) is replaced; any other
  # configuration is the machine owner's to merge.
  ours_before='{"runtimes": {"runsc": {"path": "'"$(command -v runsc)"'", "runtimeArgs": ["--platform=ptrace", "--oci-seccomp", "--network=none"]}}}'
  if [ -s "$config" ] && [ "$(cat "$config")" != "$ours_before" ]; then
    echo "$config has settings of its own: merge these runtimes into it, then run this again: $(runsc_config)" >&2
    exit 1
  else
    as_root mkdir -p /etc/docker
    runsc_config | as_root tee "$config" >/dev/null
    # A running engine rereads its runtimes on SIGHUP.
    if pidof dockerd >/dev/null; then as_root pkill -HUP -x dockerd; sleep 1; fi
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

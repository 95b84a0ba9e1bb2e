#!/usr/bin/env bash
# Starts the Docker engine if it is not answering (machines without systemd, such as CI
# containers, have nobody else to start it) and waits until it does. Debian's docker.io speaks
# API 1.41. The engine's log: ~/.cache/capsule-dockerd.log.
set -euo pipefail
docker info >/dev/null 2>&1 && exit 0
command -v dockerd >/dev/null || { echo "dockerd is missing: run scripts/setup.sh (it installs docker.io)" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
log="$HOME/.cache/capsule-dockerd.log"
mkdir -p "$(dirname "$log")"
as_root sh -c "nohup dockerd >>'$log' 2>&1 &"
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not come up within 30 s; see $log" >&2
exit 1

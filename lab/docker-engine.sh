#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
# Installs Debian's docker.io when missing and starts dockerd in the background when PID 1 is not
# systemd (CI and development machines here run no init system, so `systemctl start docker` fails).
set -euo pipefail

log() { printf '[lab] %s\n' "$*" >&2; }

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(ps -o comm= -p 1)" = "systemd" ]; then
  systemctl start docker
else
  log "starting dockerd in the background (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi

for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
log "dockerd did not answer within 60 s; see /var/log/dockerd.log"
exit 1

#!/usr/bin/env bash
# Time a cold `make lab` as issue 18 measures it (docs/converge.md, "The cold path"): this machine without
# Docker, the base image's tools, their state or pip's cache, and a fresh clone of this repository's HEAD
# with no virtualenv, wheelhouse or lab model. It REMOVES the lab, Docker (docker.io, every image and
# container under /var/lib/docker), mmdebstrap and debootstrap from this machine, so it runs only when
# told to, on a throwaway development machine.
#
#   tools/cold_lab.sh --purge-this-machine [DIR]    DIR: where to clone (default /tmp/qwen-infra-cold)
#
# Prints each step's time (make lab's own) and the total; the run's whole output is DIR.log.
set -euo pipefail

if [ "${1:-}" != "--purge-this-machine" ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
clone=${2:-/tmp/qwen-infra-cold}

log() { printf '[cold] %s\n' "$*" >&2; }

log "removing the lab, Docker, mmdebstrap, debootstrap and pip's cache"
for dir in "$repo" "$clone"; do
  if [ -x "$dir/.venv/bin/ansible-playbook" ] && command -v docker >/dev/null; then
    make -C "$dir" --no-print-directory lab-down >/dev/null 2>&1 || true
  fi
done
pkill -x dockerd || true
pkill -x containerd || true
sleep 2
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq docker.io mmdebstrap debootstrap >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get autoremove -y -qq >/dev/null
# /var/lib/docker may be a mount point of its own: empty it rather than remove it.
find /var/lib/docker /var/lib/containerd -mindepth 1 -delete 2>/dev/null || true
rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/pip" "$clone" "$clone.log"
for tool in dockerd mmdebstrap debootstrap; do
  if command -v "$tool" >/dev/null; then
    log "$tool is still installed; not a cold machine"
    exit 1
  fi
done

git clone --quiet "$repo" "$clone"
log "cold make lab in $clone at $(git -C "$clone" log -1 --format='%h %s' | cut -c1-80)"
started=$(date +%s)
status=0
make -C "$clone" lab >"$clone.log" 2>&1 || status=$?
grep -E '^\[lab\] .* (done|failed) after' "$clone.log" || true
log "make lab exited $status after $(($(date +%s) - started)) s (output: $clone.log)"
exit "$status"

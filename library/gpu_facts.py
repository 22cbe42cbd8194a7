#!/usr/bin/python
"""Ansible module: what GPUs, NVLink/NVSwitch and RDMA fabric does this host have?"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_facts
short_description: Report the host's NVIDIA GPUs, NVLink/NVSwitch topology and RDMA (IB, RoCE, EFA) devices
description:
  - Reads C(nvidia-smi -q -x) (count, model, architecture, usable memory, driver and CUDA versions),
    C(nvidia-smi topo -m) (NVLink pairs and the PCIe matrix), C(/sys/class/infiniband) (InfiniBand and RoCE
    HCAs with their ports, AWS EFA devices) and C(/sys/bus/pci/devices) (NVSwitch chips).
  - On a host without a GPU or without a working nvidia-smi it returns C(gpu_present=false) and says why
    in C(msg); fabric facts are still returned. It fails only if O(require_gpu=true).
  - Read-only; it runs the same in check mode.
options:
  require_gpu:
    description: Fail when no GPU is found.
    type: bool
    default: false
  profile:
    description:
      - Host profile to compare against, an AWS instance type (qwen_infra.catalogs.aws_instances) or an
        on-premises shape (gpu_host.ONPREM_PROFILES). Adds C(expected) and C(problems); an unknown
        profile fails the module.
    type: str
  sysfs_root:
    description: Root under which C(sys/class/infiniband) and C(sys/bus/pci/devices) are read (tests).
    type: path
    default: /
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
    details: Read-only; it runs the same in check mode and reports no change.
  diff_mode:
    support: none
    details: It changes nothing, so there is nothing to diff.
  facts:
    support: full
  platform:
    support: full
    platforms: posix
    details: Linux hosts (C(/sys), nvidia-smi).
author: qwen-infra maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read the GPU and fabric facts
  gpu_facts:

- name: Show them
  ansible.builtin.debug:
    msg: "{{ gpu_facts.msg }}"
"""

RETURN = r"""
# Every key is also set as the host fact gpu_facts (ansible_facts.gpu_facts).
gpu_present:
  description: Whether nvidia-smi listed at least one GPU.
  type: bool
  returned: always
gpu_count:
  description: Number of GPUs.
  type: int
  returned: always
gpus:
  description: Each GPU (index, name, uuid, architecture, total_bytes, usable_bytes).
  type: list
  elements: dict
  returned: always
gpu_model:
  description: Product name (names joined when mixed).
  type: str
  returned: always
gpu_architecture:
  description: product_architecture, e.g. Hopper.
  type: str
  returned: always
usable_bytes_min:
  description: Smallest usable memory (total - reserved).
  type: int
  returned: always
driver_version:
  description: NVIDIA driver version.
  type: str
  returned: always
cuda_version:
  description: Highest CUDA version the driver supports.
  type: str
  returned: always
nvlink_present:
  description: Whether any GPU pair is linked by NVLink.
  type: bool
  returned: always
nvlink_pairs:
  description: 'NVLinks per GPU pair, e.g. {"GPU0-GPU1": 18}.'
  type: dict
  returned: always
topology:
  description: C(nvidia-smi topo -m) parsed (gpus, nics, links, nvlink_pairs, cpu_affinity); null without one.
  type: dict
  returned: always
nvswitch_count:
  description: NVSwitch chips on the PCI bus.
  type: int
  returned: always
nvswitch_present:
  description: Whether any NVSwitch chip is on the PCI bus.
  type: bool
  returned: always
rdma_devices:
  description: Every RDMA device (name, kind infiniband/roce/efa, driver, fw_ver, ports, active_ports).
  type: list
  elements: dict
  returned: always
hcas:
  description: InfiniBand and RoCE device names.
  type: list
  elements: str
  returned: always
hca_ports:
  description: Active ports as NCCL_IB_HCA entries (mlx5_0:1).
  type: list
  elements: str
  returned: always
infiniband_count:
  description: InfiniBand devices.
  type: int
  returned: always
roce_count:
  description: RoCE devices.
  type: int
  returned: always
efa_devices:
  description: AWS EFA device names.
  type: list
  elements: str
  returned: always
efa_count:
  description: AWS EFA devices.
  type: int
  returned: always
expected:
  description: What the profile requires (with O(profile)).
  type: dict
  returned: with profile
problems:
  description: Measured vs expected shortfalls (with O(profile)).
  type: list
  elements: str
  returned: with profile
msg:
  description: One-line summary, or why no GPU was found.
  type: str
  returned: always
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra import gpu_host, nvidia_smi
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra.catalogs import aws_instances
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra.catalogs.gpus import GPUS
except ImportError:  # this repository: ansible.cfg points module_utils at module_utils/
    from ansible.module_utils.qwen_infra import gpu_host, nvidia_smi
    from ansible.module_utils.qwen_infra.catalogs import aws_instances
    from ansible.module_utils.qwen_infra.catalogs.gpus import GPUS


def read_nvidia_smi(module):
    """(gpus, architectures, topology, reason): empty lists and a reason when there is no usable GPU."""
    binary, out, reason = nvidia_smi.run_nvidia_smi_xml(module)
    if binary is None:
        return [], [], None, reason
    try:
        gpus = [gpu.as_dict() for gpu in nvidia_smi.parse_nvidia_smi_xml(out)]
        architectures = gpu_host.parse_architectures(out)
    except (nvidia_smi.NvidiaSmiParseError, gpu_host.GpuHostParseError) as error:
        module.fail_json(msg=f"cannot read nvidia-smi's output: {error}")
    if not gpus:
        return [], [], None, "nvidia-smi lists no GPU"
    topology = None
    rc, out, _err = module.run_command([binary, "topo", "-m"])
    if rc == 0:
        try:
            topology = gpu_host.parse_topo_matrix(out)
        except gpu_host.GpuHostParseError as error:
            module.warn(f"nvidia-smi topo -m not understood: {error}")
    return gpus, architectures, topology, ""


def main():
    module = AnsibleModule(
        argument_spec={
            "require_gpu": {"type": "bool", "default": False},
            "profile": {"type": "str"},
            "sysfs_root": {"type": "path", "default": "/"},
        },
        supports_check_mode=True,  # read-only: runs the same in check mode
    )
    root = Path(module.params["sysfs_root"])
    expected = None
    if module.params["profile"]:
        try:
            expected = gpu_host.profile_expectations(module.params["profile"], aws_instances.INSTANCES, GPUS)
        except LookupError as error:
            module.fail_json(msg=str(error))
    gpus, architectures, topology, reason = read_nvidia_smi(module)
    facts = gpu_host.assemble_facts(
        gpus,
        architectures,
        topology,
        gpu_host.read_infiniband(root / "sys/class/infiniband"),
        gpu_host.count_nvswitches(root / "sys/bus/pci/devices"),
        absent_reason=reason,
    )
    if expected is not None:
        facts["expected"] = expected
        facts["problems"] = gpu_host.compare_with_profile(facts, expected)
    if not facts["gpu_present"] and module.params["require_gpu"]:
        module.fail_json(ansible_facts={"gpu_facts": facts}, **facts)
    module.exit_json(changed=False, ansible_facts={"gpu_facts": facts}, **facts)


if __name__ == "__main__":
    main()

#!/usr/bin/python
"""Ansible module: which sandbox does a vLLM server's unit run under on this host?"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: unit_sandbox
short_description: The systemd sandbox of a vLLM server's unit on this host, and the NCCL network it allows
description:
  - Returns the hardening properties (C(Key), C(Value) pairs) the vllm role writes into the unit, and the
    GPU validation gate passes to C(systemd-run) for its NCCL check, so both run under one sandbox.
  - On a GPU host the devices are the NVIDIA ones plus the RDMA devices of the fabric, which with
    O(fabric=auto) is the one the nccl_fabric role recorded in O(nccl_env_file) (C(QWEN_INFRA_FABRIC)).
  - Also returns the network names NCCL logs for that fabric (C(Using network IB)), which the gate
    requires, so a hidden RDMA device (NCCL silently on TCP sockets) fails it.
  - Read-only; it runs the same in check mode.
options:
  device:
    description: The build the server runs, C(cuda) (GPU devices let through) or C(cpu) (no devices).
    type: str
    required: true
    choices: [cuda, cpu]
  fabric:
    description: The RDMA fabric whose devices NCCL opens; C(auto) reads the one O(nccl_env_file) records.
    type: str
    default: auto
    choices: [auto, efa, infiniband, roce, ethernet, none]
  nccl_env_file:
    description: The nccl_fabric role's environment file; absent means no fabric (C(none)).
    type: path
    default: /etc/qwen-infra/nccl.env
  nccl_log:
    description:
      - Output of an NCCL run under this sandbox with C(NCCL_DEBUG=INFO) and C(NCCL_DEBUG_SUBSYS=INIT,NET).
        Given, the module also says whether NCCL used the fabric's network (RV(nccl_problem)).
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Read-only; it runs the same in check mode and reports no change.
  diff_mode:
    support: none
    details: It changes nothing, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
author: qwen-infra maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read the unit's sandbox
  unit_sandbox:
    device: cuda
  register: sandbox

- name: Run a command under it
  ansible.builtin.command:
    argv: "{{ ['systemd-run', '--wait', '--pipe', '--collect', '--quiet']
              + sandbox.properties | map('join', '=') | map('regex_replace', '^', '--property=') | list
              + ['nvidia-smi'] }}"
"""

RETURN = r"""
fabric:
  description: The fabric the sandbox lets through (O(fabric), or the recorded one for C(auto)).
  type: str
  returned: always
properties:
  description: The unit's hardening, in order, as [Key, Value] pairs (an empty Value resets the setting).
  type: list
  elements: list
  returned: always
rdma_devices:
  description: The DeviceAllow entries for the fabric (empty on CPU hosts and without an RDMA fabric).
  type: list
  elements: str
  returned: always
nccl_networks:
  description: The names NCCL logs as C(Using network NAME) on this fabric; empty when none is required.
  type: list
  elements: str
  returned: always
nccl_networks_used:
  description: The networks O(nccl_log) names.
  type: list
  elements: str
  returned: when O(nccl_log) is given
nccl_problem:
  description: Why O(nccl_log) does not show the fabric's network (TCP sockets instead); null when it does.
  type: str
  returned: when O(nccl_log) is given
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra import unit_sandbox
except ImportError:  # this repository: ansible.cfg points module_utils at module_utils/
    from ansible.module_utils.qwen_infra import unit_sandbox


def main():
    module = AnsibleModule(
        # Literal for the documentation test; tests/test_unit_sandbox.py holds them to qwen_infra.unit_sandbox
        argument_spec={
            "device": {"type": "str", "required": True, "choices": ["cuda", "cpu"]},
            "fabric": {
                "type": "str",
                "default": "auto",
                "choices": ["auto", "efa", "infiniband", "roce", "ethernet", "none"],
            },
            "nccl_env_file": {"type": "path", "default": "/etc/qwen-infra/nccl.env"},
            "nccl_log": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    fabric = params["fabric"]
    if fabric == "auto":
        env_file = Path(params["nccl_env_file"])
        fabric = unit_sandbox.recorded_fabric(env_file.read_text() if env_file.is_file() else None)
    try:
        properties = unit_sandbox.properties(params["device"], fabric)
    except unit_sandbox.SandboxError as error:
        module.fail_json(msg=f"{params['nccl_env_file']} records an unknown fabric: {error}")
    judged = {}
    if params["nccl_log"] is not None:
        judged = {
            "nccl_networks_used": unit_sandbox.nccl_networks_used(params["nccl_log"]),
            "nccl_problem": unit_sandbox.nccl_network_problem(params["nccl_log"], fabric),
        }
    module.exit_json(
        changed=False,
        **judged,
        fabric=fabric,
        properties=[list(pair) for pair in properties],
        rdma_devices=unit_sandbox.RDMA_DEVICES_BY_FABRIC[fabric] if params["device"] == "cuda" else [],
        nccl_networks=unit_sandbox.NCCL_NETWORKS_BY_FABRIC[fabric],
    )


if __name__ == "__main__":
    main()

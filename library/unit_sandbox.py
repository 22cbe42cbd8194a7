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
  known:
    description:
      - What C(host_facts) read of the host earlier in the same run (its result), with O(nccl_env_file)'s
        text among its C(contents) answers. Where it has it, the action plugin computes the answer on the
        controller and the module does not run on the host; otherwise the module runs as without it.
      - Give it only when no task between that read and this one changes O(nccl_env_file).
    type: dict
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
computed_on_controller:
  description: True when O(known) held the environment file's text and the module did not run on the host.
  type: bool
  returned: when the module did not run
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
            # Read by the action plugin (action_plugins/unit_sandbox.py), which does not pass it on.
            "known": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    params = module.params
    env_file = Path(params["nccl_env_file"])
    env_text = env_file.read_text() if params["fabric"] == "auto" and env_file.is_file() else None
    try:
        result = unit_sandbox.answer(params["device"], params["fabric"], env_text, params["nccl_log"])
    except unit_sandbox.SandboxError as error:
        module.fail_json(msg=f"{params['nccl_env_file']} records an unknown fabric: {error}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()

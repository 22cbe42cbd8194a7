#!/usr/bin/python
"""Ansible module: will this vLLM server, as described, start on this host with this model?"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vram_check
short_description: Check a vLLM server's settings against the model and the host's GPUs, and build its command
description:
  - Takes the server as the vllm role describes it (O(server), one key per setting, under vLLM's names),
    checks the settings, builds the exact command line the unit will run (C(argv)), and, where the model's
    config.json is on the host, checks the model's shape against the settings on every host, GPU or not
    (heads, KV heads, experts and layers against the parallel sizes; max_model_len against the model's
    positions and RoPE scaling; --quantization against the checkpoint; dtype and FP8 against the GPU
    generation).
  - Where GPUs are present (or O(gpu_memory_bytes) is given) it also reproduces vLLM's start-up memory
    accounting (weights, profiling peak, non-torch memory, CUDA graphs, paged KV cache) and fails, naming
    the real cause and the changes that would fit, when the plan does not fit. Elsewhere the result says
    the memory was not checked (C(checked=false)).
  - Messages name the role variables (vllm_max_model_len), not vLLM's flags.
  - Read-only; it runs the same in check mode and never reports a change.
options:
  server:
    description:
      - The server's settings, keyed by vLLM's names without dashes (model, served_model_name, host, port,
        dtype, tensor_parallel_size, pipeline_parallel_size, data_parallel_size, enable_expert_parallel,
        max_model_len, kv_cache_dtype, quantization, gpu_memory_utilization, max_num_seqs,
        max_num_batched_tokens, block_size, enforce_eager, optimization_level,
        distributed_executor_backend, nnodes, node_rank, master_addr, master_port, extra_args). Null values
        mean vLLM's default. An unknown key, or a modelled setting in extra_args, is refused.
      - With nnodes above 1 the server is one node of a group (node_rank 0 the head, above 0 headless);
        the layout is checked over the nodes (no tensor-parallel group across nodes), and the host needs
        only its share of the GPUs.
    type: dict
    required: true
  python:
    description: The interpreter of vLLM's virtualenv, the first word of C(argv).
    type: str
    default: python3
  device:
    description:
      - C(auto) sizes the GPUs when nvidia-smi answers and checks only the shape otherwise; C(cuda)
        requires a GPU; C(cpu) checks only the shape (vLLM's CPU backend).
    type: str
    choices: [auto, cuda, cpu]
    default: auto
  gpu_memory_bytes:
    description: Usable bytes per GPU to size against instead of reading nvidia-smi (planning, MIG slices).
    type: int
  model_dir:
    description:
      - Where the model's config.json and weights are read, when that is not the server's C(model) (the
        path the unit passes to vLLM), such as the model revision about to be linked there.
    type: path
  require_model:
    description:
      - Fail when the model's config.json is not on the host. With C(false) (check mode on a fresh host,
        or the validate stage before the model is fetched) only the settings are checked.
    type: bool
    default: true
  fail_on_misfit:
    description: Fail when the GPU memory does not hold the plan (shape problems always fail).
    type: bool
    default: true
  service_name:
    description:
      - The systemd service this server runs as. GPU memory that other processes hold (nvidia-smi's
        process list; processes of this service are left out, since a restart frees them) is taken off
        the GPUs, so a plan that would share a GPU with another server and run out of memory while
        serving is refused. Without it, the GPUs' whole usable memory is sized.
    type: str
  vllm_version:
    description:
      - The vLLM release the host runs (or will install). Releases differ in what they count inside the
        memory budget (CUDA-graph memory, for one); the sizing models this one's rules, or those of the
        release the vllm role pins when it is not given.
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
notes:
  - Needs only Python's standard library on the host; the sizing engine (qwen_infra.sizing, the code the
    C(qwen-infra) command runs) is shipped with the module. How it computes and how close it comes to
    real vLLM logs is in the project's docs/sizing.md.
author: qwen-infra maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Check the server and build its command line
  vram_check:
    server:
      model: /srv/models/Qwen3-32B
      served_model_name: Qwen3-32B
      tensor_parallel_size: 2
      max_model_len: 32768
    python: /opt/vllm/venv/bin/python
  register: vllm_plan

- name: Report only, on a planning host with no GPU
  vram_check:
    server:
      model: /srv/models/Qwen3-32B
      served_model_name: Qwen3-32B
    gpu_memory_bytes: 85017493504
    fail_on_misfit: false
"""

RETURN = r"""
argv:
  description: The whole command the unit runs (interpreter, entry point, arguments), from qwen_infra.server.
  type: list
  elements: str
  returned: always
command:
  description: C(argv) as one shell-quoted line, for people.
  type: str
  returned: always
checked:
  description: Whether GPU memory was sized (false without a GPU, with device=cpu, or without the model).
  type: bool
  returned: always
shape_checked:
  description: Whether the model's config.json was read and its shape checked against the settings.
  type: bool
  returned: always
fits:
  description: Whether vLLM will start (null when memory was not checked and the shape is fine).
  type: bool
  returned: always
msg:
  description: What was found; when the plan is refused, the real cause first, then what to change.
  type: str
  returned: always
weights_gib_per_rank:
  description: Weight memory per GPU, as vLLM logs it ("Model loading took").
  type: float
  returned: when checked
kv_cache_gib_per_rank:
  description: KV cache memory per GPU ("Available KV cache memory").
  type: float
  returned: when checked
kv_cache_tokens:
  description: Tokens the paged KV cache holds ("GPU KV cache size").
  type: int
  returned: when checked
max_concurrency:
  description: Requests of max_model_len tokens the KV cache holds at once ("Maximum concurrency").
  type: float
  returned: when checked
max_model_len:
  description: The context length sized (vllm_max_model_len, or the model's own when unset).
  type: int
  returned: when checked
max_model_len_that_fits:
  description: Longest context one request can have.
  type: int
  returned: when checked
problems:
  description: Why the plan is refused, then lines starting "fix:" with changes that make it fit.
  type: list
  elements: str
  returned: always
breakdown:
  description: Per-stage memory (reservation, weights, activation peak, non-torch, CUDA graphs, KV).
  type: dict
  returned: when checked
gpu:
  description: The GPU sized against (the smallest the plan uses, or the given memory per GPU).
  type: str
  returned: when checked
node:
  description:
    - On a node of a multi-node group, what this node holds (rank, gpus, pipeline stages, their layers
      [first, end) and their memory per GPU); the rest of the verdict is the group's.
  type: dict
  returned: when checked, with nnodes above 1
gpus:
  description: The GPUs nvidia-smi listed (index, name, usable GiB).
  type: list
  elements: dict
  returned: always
"""

import shlex
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra import (
        gpu_host,
        nvidia_smi,
        preflight,
        server,
    )
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra.sizing import (
        architecture,
        errors,
        weights,
    )
except ImportError:  # this repository: ansible.cfg points module_utils at module_utils/
    from ansible.module_utils.qwen_infra import gpu_host, nvidia_smi, preflight, server
    from ansible.module_utils.qwen_infra.sizing import architecture, errors, weights


def read_gpus(module):
    """(GPUs, GPU generations, reason, memory other processes hold per GPU) from `nvidia-smi -q -x`;
    GPUs None when there is no usable one."""
    binary, out, reason = nvidia_smi.run_nvidia_smi_xml(module)
    if binary is None:
        return None, [], reason, {}
    try:
        gpus = nvidia_smi.parse_nvidia_smi_xml(out)
        generations = gpu_host.parse_architectures(out)
        processes = nvidia_smi.parse_gpu_processes(out)
    except (nvidia_smi.NvidiaSmiParseError, gpu_host.GpuHostParseError) as error:
        module.fail_json(msg=f"cannot read nvidia-smi's output: {error}")
    if not gpus:
        return None, [], "nvidia-smi lists no GPU", {}
    return gpus, generations, "", nvidia_smi.held_by_others(processes, module.params["service_name"])


def finish(module, described, argv, result):
    """Exit or fail with the verdict, messages in the role's terms."""
    result = {
        **result,
        "msg": preflight.in_role_terms(result["msg"]),
        "problems": [preflight.in_role_terms(problem) for problem in result.get("problems", [])],
        "argv": argv,
        "command": shlex.join(argv),
    }
    shape_refused = result["fits"] is False and not result.get("checked")
    if shape_refused or (result["fits"] is False and module.params["fail_on_misfit"]):
        module.fail_json(**result)
    module.exit_json(changed=False, **result)


def main():
    module = AnsibleModule(
        argument_spec={
            "server": {"type": "dict", "required": True},
            "python": {"type": "str", "default": "python3"},
            "device": {"type": "str", "choices": ["auto", "cuda", "cpu"], "default": "auto"},
            "gpu_memory_bytes": {"type": "int"},
            "model_dir": {"type": "path"},
            "require_model": {"type": "bool", "default": True},
            "fail_on_misfit": {"type": "bool", "default": True},
            "vllm_version": {"type": "str"},
            "service_name": {"type": "str"},
        },
        supports_check_mode=True,  # read-only: runs the same in check mode
    )
    p = module.params
    try:
        described = server.from_settings(p["server"])
    except server.ServerConfigError as error:
        module.fail_json(msg=f"the vllm role's server settings are unusable: {error}")
    argv = server.full_command(described, p["python"])

    model_dir = p["model_dir"] or described.model
    config = Path(model_dir) / "config.json"
    if not config.is_file():
        if p["require_model"]:
            module.fail_json(
                msg=f"{config} does not exist: point vllm_model_path (or vllm_model_release_path) at a model "
                "directory on this host (the model_fetch role puts it there)",
                argv=argv,
            )
        finish(module, described, argv, {
            "checked": False, "shape_checked": False, "fits": None, "problems": [], "gpus": [],
            "msg": f"settings checked; {config} is not here yet, so the model's shape and memory are "
            "checked once it is",
        })  # fmt: skip

    gpus, generations, in_use = None, [], {}
    if p["device"] != "cpu" and p["gpu_memory_bytes"] is None:
        gpus, generations, reason, in_use = read_gpus(module)
        if gpus is None and p["device"] == "cuda":
            module.fail_json(
                msg=f"device is cuda but this host has no usable NVIDIA GPU: {reason}", argv=argv
            )
    try:
        arch = architecture.load_architecture(model_dir)
        tensors = weights.checkpoint_tensors(model_dir)
        result = preflight.check_server(
            arch,
            described,
            gpus=gpus,
            architectures=generations,
            tensors=tensors,
            gpu_memory_bytes=p["gpu_memory_bytes"],
            vllm_version=p["vllm_version"],
            gpu_memory_in_use=in_use,
        )
    except errors.SizingError as error:
        module.fail_json(msg=str(error), argv=argv)
    finish(module, described, argv, result)


if __name__ == "__main__":
    main()

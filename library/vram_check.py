#!/usr/bin/python
"""Ansible module: will this model, with these vLLM arguments, fit this host's GPUs?"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vram_check
short_description: Check that a vLLM plan fits the host's GPU memory before vLLM is started
description:
  - Reads the model's config.json (and the exact tensor sizes from its safetensors headers when present),
    the host's GPUs from C(nvidia-smi -q -x), and the intended vLLM arguments, then reproduces vLLM's
    start-up memory accounting (weights, profiling peak, non-torch memory, CUDA graphs, paged KV cache).
  - Returns the full breakdown as the fact C(vram_check) and fails, naming the shortfall and concrete
    fixes (lower max-model-len to N, raise tensor-parallel size to M, use AWQ, ...), when the plan does
    not fit.
  - A host without an NVIDIA GPU (or O(device=cpu)) is reported with C(checked=false) and a message
    saying the check does not apply; it never fails for that reason unless O(device=cuda).
  - Read-only; it runs the same in check mode.
options:
  model_path:
    description: Directory holding the model's config.json (and optionally *.safetensors).
    type: path
    required: true
  tensor_parallel_size:
    description: vLLM --tensor-parallel-size.
    type: int
    default: 1
  pipeline_parallel_size:
    description: vLLM --pipeline-parallel-size.
    type: int
    default: 1
  enable_expert_parallel:
    description: vLLM --enable-expert-parallel (MoE models).
    type: bool
    default: false
  quantization:
    description: vLLM --quantization; omit to use what the checkpoint says.
    type: str
    choices: [none, awq, gptq, fp8]
  kv_cache_dtype:
    description: vLLM --kv-cache-dtype.
    type: str
    choices: [auto, fp8]
    default: auto
  max_model_len:
    description: vLLM --max-model-len; omit for the model's own limit.
    type: int
  max_num_seqs:
    description: vLLM --max-num-seqs; omit for vLLM's default on this GPU.
    type: int
  max_num_batched_tokens:
    description: vLLM --max-num-batched-tokens; omit for vLLM's default on this GPU.
    type: int
  gpu_memory_utilization:
    description: vLLM --gpu-memory-utilization.
    type: float
    default: 0.92
  device:
    description:
      - C(auto) checks the GPUs when nvidia-smi answers and reports C(checked=false) otherwise;
        C(cuda) requires a GPU; C(cpu) skips the check (vLLM's CPU backend).
    type: str
    choices: [auto, cuda, cpu]
    default: auto
  gpu_memory_bytes:
    description: Usable bytes per GPU to size against instead of reading nvidia-smi (planning, MIG slices).
    type: int
  fail_on_misfit:
    description: Fail the task when the plan does not fit (otherwise only report it).
    type: bool
    default: true
author: qwen-infra
"""

EXAMPLES = r"""
- name: Check that the model fits before the vLLM unit is started
  vram_check:
    model_path: /srv/models/Qwen3-32B
    tensor_parallel_size: 2
    max_model_len: 32768
    gpu_memory_utilization: 0.92

- name: Report only, on a planning host with no GPU
  vram_check:
    model_path: /srv/models/Qwen3-32B
    gpu_memory_bytes: 85017493504
    fail_on_misfit: false
"""

RETURN = r"""
checked:
  description: Whether GPUs were sized (false on hosts without a GPU or with device=cpu).
  type: bool
  returned: always
fits:
  description: Whether vLLM will start with this plan (null when not checked).
  type: bool
  returned: always
msg:
  description: One sentence saying what was found and, when it does not fit, why and what to change.
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
max_model_len_that_fits:
  description: Longest context one request can have.
  type: int
  returned: when checked
problems:
  description: Why the plan does not fit, then lines starting "fix:" with changes that make it fit.
  type: list
  elements: str
  returned: always
breakdown:
  description: Per-stage memory (reservation, weights, activation peak, non-torch, CUDA graphs, KV).
  type: dict
  returned: when checked
gpus:
  description: The GPUs nvidia-smi listed (index, name, usable GiB).
  type: list
  elements: dict
  returned: always
ansible_facts:
  description: The same result as the fact vram_check.
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra import nvidia_smi
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra.sizing import (
        architecture,
        errors,
        layout,
        report,
        weights,
    )
except ImportError:  # this repository: ansible.cfg points module_utils at module_utils/
    from ansible.module_utils.qwen_infra import nvidia_smi
    from ansible.module_utils.qwen_infra.sizing import architecture, errors, layout, report, weights


def read_gpus(module):
    """GPUs from `nvidia-smi -q -x`; (None, reason) when there is no usable nvidia-smi."""
    binary, out, reason = nvidia_smi.run_nvidia_smi_xml(module)
    if binary is None:
        return None, reason
    try:
        gpus = nvidia_smi.parse_nvidia_smi_xml(out)
    except nvidia_smi.NvidiaSmiParseError as error:
        module.fail_json(msg=f"cannot read nvidia-smi's output: {error}")
    if not gpus:
        return None, "nvidia-smi lists no GPU"
    return gpus, ""


def main():
    module = AnsibleModule(
        argument_spec={
            "model_path": {"type": "path", "required": True},
            "tensor_parallel_size": {"type": "int", "default": 1},
            "pipeline_parallel_size": {"type": "int", "default": 1},
            "enable_expert_parallel": {"type": "bool", "default": False},
            "quantization": {"type": "str", "choices": ["none", "awq", "gptq", "fp8"]},
            "kv_cache_dtype": {"type": "str", "choices": ["auto", "fp8"], "default": "auto"},
            "max_model_len": {"type": "int"},
            "max_num_seqs": {"type": "int"},
            "max_num_batched_tokens": {"type": "int"},
            "gpu_memory_utilization": {"type": "float", "default": 0.92},
            "device": {"type": "str", "choices": ["auto", "cuda", "cpu"], "default": "auto"},
            "gpu_memory_bytes": {"type": "int"},
            "fail_on_misfit": {"type": "bool", "default": True},
        },
        supports_check_mode=True,  # read-only: runs the same in check mode
    )
    p = module.params

    if p["device"] == "cpu":
        result = report.not_checked(
            "device is cpu: vLLM runs on the CPU backend here, so the GPU memory check does not apply"
        )
        module.exit_json(changed=False, ansible_facts={"vram_check": result}, **result)

    gpus = None
    if p["gpu_memory_bytes"] is None:
        gpus, reason = read_gpus(module)
        if gpus is None:
            if p["device"] == "cuda":
                module.fail_json(msg=f"device is cuda but this host has no usable NVIDIA GPU: {reason}")
            result = report.not_checked(
                f"this host has no NVIDIA GPU ({reason}), so the GPU memory check does not apply"
            )
            module.exit_json(changed=False, ansible_facts={"vram_check": result}, **result)

    plan = layout.Plan(
        tensor_parallel_size=p["tensor_parallel_size"],
        pipeline_parallel_size=p["pipeline_parallel_size"],
        enable_expert_parallel=p["enable_expert_parallel"],
        kv_cache_dtype=p["kv_cache_dtype"],
        max_model_len=p["max_model_len"],
        max_num_seqs=p["max_num_seqs"],
        max_num_batched_tokens=p["max_num_batched_tokens"],
        gpu_memory_utilization=p["gpu_memory_utilization"],
    )
    try:
        arch = architecture.with_quantization(
            architecture.load_architecture(p["model_path"]), p["quantization"]
        )
        tensors = weights.checkpoint_tensors(p["model_path"])
        result = report.check_host(
            arch, plan, gpus=gpus, tensors=tensors, gpu_memory_bytes=p["gpu_memory_bytes"]
        )
    except errors.SizingError as error:
        module.fail_json(msg=str(error))

    if not result["fits"] and p["fail_on_misfit"]:
        module.fail_json(ansible_facts={"vram_check": result}, **result)
    module.exit_json(changed=False, ansible_facts={"vram_check": result}, **result)


if __name__ == "__main__":
    main()

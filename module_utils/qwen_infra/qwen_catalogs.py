"""Catalogs for the sizing engine: Qwen architectures and GPU memory. Data only, no logic.

This file is the one source of truth for these facts; the engine (qwen_sizing.py), the Ansible
modules, the CLI and the Pulumi program all read them from here. Stdlib only, nothing imported.

MODELS: the fields of each model's config.json that the engine reads, spelled exactly as in
config.json, so a catalog entry and a checkpoint on disk go through the same parser. Sources are the
official Hugging Face config.json files (ModelScope mirrors them byte for byte).

QUANTIZED_VARIANTS: what an official pre-quantized checkpoint changes relative to its base model
(its `quantization_config`, and for Qwen2.5-72B the intermediate size padded so TP=8 divides).

GPUS: memory of each GPU as the CUDA runtime reports it (torch.cuda.mem_get_info()[1]), which is the
number vLLM multiplies by gpu_memory_utilization, next to the nvidia-smi total. "measured" entries were
read on a real card; "derived" ones come from published figures and need a check on real hardware.
"""

HF = "https://huggingface.co/{}/blob/main/config.json"

# The vLLM release the engine's constants were checked against, and its default utilisation
# (vllm/config/cache.py: gpu_memory_utilization Field(default=0.92); 0.90 before v0.2x).
VLLM_VERSION = "v0.33"
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92

_QWEN3_COMMON = {
    "model_type": "qwen3",
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "torch_dtype": "bfloat16",
}
_QWEN3_MOE_COMMON = {
    "model_type": "qwen3_moe",
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
    "num_experts_per_tok": 8,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
}
_QWEN2_COMMON = {
    "model_type": "qwen2",
    "vocab_size": 152064,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
}

MODELS = {
    "Qwen/Qwen3-0.6B": {
        **_QWEN3_COMMON,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "tie_word_embeddings": True,
        "source": HF.format("Qwen/Qwen3-0.6B"),
    },
    "Qwen/Qwen3-1.7B": {
        **_QWEN3_COMMON,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "tie_word_embeddings": True,
        "source": HF.format("Qwen/Qwen3-1.7B"),
    },
    "Qwen/Qwen3-4B": {
        **_QWEN3_COMMON,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 2560,
        "intermediate_size": 9728,
        "tie_word_embeddings": True,
        "source": HF.format("Qwen/Qwen3-4B"),
    },
    "Qwen/Qwen3-8B": {
        **_QWEN3_COMMON,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "tie_word_embeddings": False,
        "source": HF.format("Qwen/Qwen3-8B"),
    },
    "Qwen/Qwen3-14B": {
        **_QWEN3_COMMON,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "hidden_size": 5120,
        "intermediate_size": 17408,
        "tie_word_embeddings": False,
        "source": HF.format("Qwen/Qwen3-14B"),
    },
    "Qwen/Qwen3-32B": {
        **_QWEN3_COMMON,
        "num_hidden_layers": 64,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "hidden_size": 5120,
        "intermediate_size": 25600,
        "tie_word_embeddings": False,
        "source": HF.format("Qwen/Qwen3-32B"),
    },
    "Qwen/Qwen3-30B-A3B": {
        **_QWEN3_MOE_COMMON,
        "num_hidden_layers": 48,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "moe_intermediate_size": 768,
        "num_experts": 128,
        "source": HF.format("Qwen/Qwen3-30B-A3B"),
    },
    "Qwen/Qwen3-235B-A22B": {
        **_QWEN3_MOE_COMMON,
        "num_hidden_layers": 94,
        "num_attention_heads": 64,
        "num_key_value_heads": 4,
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "moe_intermediate_size": 1536,
        "num_experts": 128,
        "source": HF.format("Qwen/Qwen3-235B-A22B"),
    },
    "Qwen/Qwen2.5-7B-Instruct": {
        **_QWEN2_COMMON,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "max_position_embeddings": 32768,
        "source": HF.format("Qwen/Qwen2.5-7B-Instruct"),
    },
    "Qwen/Qwen2.5-72B-Instruct": {
        **_QWEN2_COMMON,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "hidden_size": 8192,
        "intermediate_size": 29568,
        "max_position_embeddings": 32768,
        "source": HF.format("Qwen/Qwen2.5-72B-Instruct"),
    },
    "Qwen/QwQ-32B": {
        **_QWEN2_COMMON,
        "num_hidden_layers": 64,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "hidden_size": 5120,
        "intermediate_size": 27648,
        # 40960 as recorded from Qwen/QwQ-32B's config.json (sizing.md §5 said "check"); not re-read
        # from the live file in this change.
        "max_position_embeddings": 40960,
        "source": HF.format("Qwen/QwQ-32B"),
    },
}

# quantization_config blocks as the official checkpoints carry them.
AWQ_W4_G128 = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}
GPTQ_W4_G128 = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}
FP8_BLOCK_128 = {
    "quant_method": "fp8",
    "fmt": "e4m3",
    "activation_scheme": "dynamic",
    "weight_block_size": [128, 128],
}

# Suffix of a checkpoint name -> the quantization_config it implies (longest suffix wins).
QUANTIZATION_SUFFIXES = {
    "-AWQ": AWQ_W4_G128,
    "-GPTQ-Int4": GPTQ_W4_G128,
    "-FP8": FP8_BLOCK_128,
}

# Per-checkpoint changes beyond the quantization_config (key: the quantized checkpoint's name).
QUANTIZED_VARIANTS = {
    # Padded from 29568 so that 29696 / 8 = 3712 = 29 x 128 splits into whole AWQ groups at TP=8.
    "Qwen/Qwen2.5-72B-Instruct-AWQ": {
        "intermediate_size": 29696,
        "source": HF.format("Qwen/Qwen2.5-72B-Instruct-AWQ"),
    },
    "Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4": {
        "intermediate_size": 29696,
        "source": HF.format("Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4"),
    },
}

GIB = 1 << 30
MIB = 1 << 20

# usable_bytes: what the CUDA runtime reports as total memory (torch.cuda.mem_get_info()[1]); it is
# nvidia-smi's memory.total minus memory.reserved. nvlink: the SXM/HGX boards sold in 4- and 8-GPU
# NVLink/NVSwitch nodes, where NCCL's buffers are larger (PCIe variants are recognised by name).
# cost_rank orders the GPUs by typical rental price (1 = cheapest); the recommender uses it only to
# break ties between layouts of equal GPU count.
GPUS = {
    "L4": {
        "nvlink": False,
        "product_names": ["NVIDIA L4"],
        "usable_bytes": int(22.03 * GIB),
        "nvidia_smi_total_mib": 23034,
        "cost_rank": 1,
        "kind": "derived",
        "source": "nvidia-smi total 23034 MiB on L4 (published g6 listings); usable taken as the "
        "22.03 GiB PyTorch reports in published OOM messages. Check on hardware.",
        "date": "2026-11-22",
    },
    "A10G": {
        "nvlink": False,
        "product_names": ["NVIDIA A10G"],
        "usable_bytes": int(22.19 * GIB),
        "nvidia_smi_total_mib": 23028,
        "cost_rank": 2,
        "kind": "derived",
        "source": "nvidia-smi total 23028 MiB on A10G (AWS g5); usable taken as the 22.19 GiB PyTorch "
        "reports in published OOM messages. Check on hardware.",
        "date": "2026-11-22",
    },
    "L40S": {
        "nvlink": False,
        "product_names": ["NVIDIA L40S"],
        "usable_bytes": int(44.39 * GIB),
        "nvidia_smi_total_mib": 46068,
        "cost_rank": 3,
        "kind": "derived",
        "source": "nvidia-smi total 46068 MiB on L40S (AWS g6e); usable 44.39 GiB from published "
        "PyTorch/vLLM totals. Check on hardware.",
        "date": "2026-11-22",
    },
    "A100-40GB": {
        "nvlink": True,
        "product_names": ["NVIDIA A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB", "NVIDIA A100 40GB"],
        "usable_bytes": int(39.39 * GIB),
        "nvidia_smi_total_mib": 40960,
        "cost_rank": 4,
        "kind": "derived",
        "source": "nvidia-smi total 40960 MiB; usable 39.39 GiB, the total PyTorch reports for "
        "A100-SXM4-40GB in published OOM messages. Check on hardware.",
        "date": "2026-11-22",
    },
    "A100-80GB": {
        "nvlink": True,
        "product_names": ["NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe", "NVIDIA A100-PCIE-80GB"],
        "usable_bytes": int(79.25 * GIB),
        "nvidia_smi_total_mib": 81920,
        "cost_rank": 5,
        "kind": "derived",
        "source": "nvidia-smi total 81920 MiB; usable 79.25 GiB as reported to vLLM "
        "(shared/reference/sizing.md §1; 79.15 GiB is also seen with other drivers). Check.",
        "date": "2026-11-22",
    },
    "H20": {
        "nvlink": True,
        "product_names": ["NVIDIA H20"],
        "usable_bytes": int(95.00 * GIB),
        "nvidia_smi_total_mib": 97871,
        "cost_rank": 6,
        "kind": "derived",
        "source": "nvidia-smi total 97871 MiB on H20 (96 GB HBM3); usable assumed 95.00 GiB from "
        "published totals. Check on hardware.",
        "date": "2026-11-22",
    },
    "H100-80GB": {
        "nvlink": True,
        "product_names": ["NVIDIA H100 80GB HBM3", "NVIDIA H100"],
        "usable_bytes": 85017493504,
        "nvidia_smi_total_mib": 81559,
        "cost_rank": 7,
        "kind": "measured",
        "source": "measured on a lent H100 80GB HBM3 (driver 580.159.04, CUDA 13.0): nvidia-smi total "
        "81559 MiB, reserved 480 MiB; torch.cuda.mem_get_info total 85017493504 B = 81079 MiB; "
        "NVML total 85520809984 B (tests/fixtures/gpu/h100-80gb-hbm3).",
        "date": "2026-11-22",
    },
    "H200-141GB": {
        "nvlink": True,
        "product_names": ["NVIDIA H200"],
        "usable_bytes": 150109880320,
        "nvidia_smi_total_mib": 143771,
        "cost_rank": 8,
        "kind": "measured",
        "source": "measured on a lent H200 (driver 580.159.04, CUDA 13.0): nvidia-smi total 143771 MiB, "
        "reserved 616 MiB; torch.cuda.mem_get_info total 150109880320 B = 139.80 GiB "
        "(tests/fixtures/gpu/h200).",
        "date": "2026-11-22",
    },
}

# Short names people type.
GPU_ALIASES = {
    "H100": "H100-80GB",
    "H200": "H200-141GB",
    "A100": "A100-80GB",
    "A100-80G": "A100-80GB",
    "A100-40G": "A100-40GB",
}

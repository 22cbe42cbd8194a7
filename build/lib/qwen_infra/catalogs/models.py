"""Catalog of Qwen architectures: the config.json fields the sizing engine reads. Data only.

MODELS: the fields of each model's config.json that the engine reads, spelled exactly as in
config.json, so a catalog entry and a checkpoint on disk go through the same parser. Sources are the
official Hugging Face config.json files (ModelScope mirrors them byte for byte).

QUANTIZED_VARIANTS: what an official pre-quantized checkpoint changes relative to its base model
(its `quantization_config`, and for Qwen2.5-72B the intermediate size padded so TP=8 divides).
"""

HF = "https://huggingface.co/{}/blob/main/config.json"

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

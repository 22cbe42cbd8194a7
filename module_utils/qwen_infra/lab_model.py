"""Make the lab's model: a tiny Qwen3-architecture checkpoint with random weights and a real tokenizer.

No model hub is reachable from the lab, so the model is generated: a byte-level BPE tokenizer trained on a
few sentences, a ChatML chat template like Qwen's, and bf16 weights written straight to safetensors
(without torch on the controller). vLLM's CPU attention needs head_dim 64, hence the shape below.

    python module_utils/qwen_infra/lab_model.py --out .cache/lab-model/qwen3-tiny
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

# Shape of the lab model (Qwen3 layout: q/k norms, GQA, tied embeddings like the small Qwen3 models).
ARCH = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "vocab_size": 512,
    "max_position_embeddings": 4096,
}
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
CORPUS = [
    "Qwen is a family of large language models.",
    "vLLM serves models through an OpenAI compatible API.",
    "The quick brown fox jumps over the lazy dog.",
    "Ansible configures hosts; Pulumi provisions the cloud.",
    "Hello! How can I help you today? Please answer in one word.",
    "GPU memory holds the weights and the paged key value cache.",
    "0123456789 ,.;:!?'\"()[]{}<>-_/\\@#$%^&*+=~`|",
]
SEED = 20261121


def train_tokenizer(vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 8, trainer=trainer)
    return tokenizer


def weight_shapes(arch: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a Qwen3ForCausalLM checkpoint with tied embeddings."""
    hidden, inter, head_dim = arch["hidden_size"], arch["intermediate_size"], arch["head_dim"]
    q_dim = arch["num_attention_heads"] * head_dim
    kv_dim = arch["num_key_value_heads"] * head_dim
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (arch["vocab_size"], hidden)}
    for layer in range(arch["num_hidden_layers"]):
        prefix = f"model.layers.{layer}."
        shapes |= {
            prefix + "input_layernorm.weight": (hidden,),
            prefix + "post_attention_layernorm.weight": (hidden,),
            prefix + "self_attn.q_proj.weight": (q_dim, hidden),
            prefix + "self_attn.k_proj.weight": (kv_dim, hidden),
            prefix + "self_attn.v_proj.weight": (kv_dim, hidden),
            prefix + "self_attn.o_proj.weight": (hidden, q_dim),
            prefix + "self_attn.q_norm.weight": (head_dim,),
            prefix + "self_attn.k_norm.weight": (head_dim,),
            prefix + "mlp.gate_proj.weight": (inter, hidden),
            prefix + "mlp.up_proj.weight": (inter, hidden),
            prefix + "mlp.down_proj.weight": (hidden, inter),
        }
    shapes["model.norm.weight"] = (hidden,)
    return shapes


def to_bf16_bytes(values: np.ndarray) -> bytes:
    """bfloat16 is the upper half of float32 (rounded to nearest even); numpy has no bf16 type."""
    bits = values.astype(np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype("<u2").tobytes()


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write the safetensors layout: u64 header length, JSON header, then the raw bf16 data."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, values in tensors.items():
        blob = to_bf16_bytes(values)
        header[name] = {
            "dtype": "BF16",
            "shape": list(values.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # the data section starts 8-byte aligned
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(header_bytes)))
        handle.write(header_bytes)
        for blob in blobs:
            handle.write(blob)


def random_weights(arch: dict[str, int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    tensors = {}
    for name, shape in weight_shapes(arch).items():
        if name.endswith("norm.weight"):
            tensors[name] = np.ones(shape, dtype=np.float32)  # RMSNorm gains start at 1
        else:
            tensors[name] = rng.normal(0.0, 0.02, size=shape).astype(np.float32)
    return tensors


def model_config(arch: dict[str, int], token_ids: dict[str, int | None]) -> dict[str, object]:
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        **arch,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
        "use_cache": True,
        "use_sliding_window": False,
        "sliding_window": None,
        "max_window_layers": arch["num_hidden_layers"],
        "bos_token_id": token_ids["<|endoftext|>"],
        "eos_token_id": token_ids["<|im_end|>"],
        "torch_dtype": "bfloat16",
    }


def make_model(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(ARCH["vocab_size"])
    token_ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    tokenizer.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": ARCH["max_position_embeddings"],
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "bos_token": None,
                "unk_token": None,
                "chat_template": CHAT_TEMPLATE,
                "clean_up_tokenization_spaces": False,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "config.json").write_text(json.dumps(model_config(ARCH, token_ids), indent=2) + "\n")
    (out / "generation_config.json").write_text(
        json.dumps({"eos_token_id": token_ids["<|im_end|>"], "pad_token_id": token_ids["<|endoftext|>"]})
        + "\n"
    )
    write_safetensors(out / "model.safetensors", random_weights(ARCH))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write the model into")
    args = parser.parse_args(argv)
    make_model(args.out)
    print(f"tiny Qwen3 model written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

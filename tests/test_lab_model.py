"""The lab model generator writes a checkpoint whose tensors, config and tokenizer agree."""

import itertools
import json
import struct

import numpy as np
import pytest
from qwen_infra import lab_model as tiny
from tokenizers import Tokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("qwen3-tiny")
    tiny.make_model(out)
    return out


def read_safetensors_header(path):
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(length)), 8 + length


def test_checkpoint_holds_every_qwen3_tensor_with_its_shape(model_dir):
    header, _ = read_safetensors_header(model_dir / "model.safetensors")
    header.pop("__metadata__")
    expected = tiny.weight_shapes(tiny.ARCH)
    assert {name: tuple(meta["shape"]) for name, meta in header.items()} == expected
    assert {meta["dtype"] for meta in header.values()} == {"BF16"}


def test_tensor_offsets_tile_the_data_section(model_dir):
    path = model_dir / "model.safetensors"
    header, data_start = read_safetensors_header(path)
    header.pop("__metadata__")
    spans = sorted(meta["data_offsets"] for meta in header.values())
    assert spans[0][0] == 0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert data_start % 8 == 0
    assert path.stat().st_size == data_start + spans[-1][1]


def test_config_matches_the_checkpoint_and_cpu_attention_limits(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["Qwen3ForCausalLM"]
    assert config["head_dim"] == 64  # vLLM's CPU attention rejected 16
    assert config["num_attention_heads"] % config["num_key_value_heads"] == 0
    assert config["tie_word_embeddings"] is True
    assert "lm_head.weight" not in tiny.weight_shapes(tiny.ARCH)


def test_tokenizer_knows_the_chat_tokens_and_fits_the_vocabulary(model_dir):
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    config = json.loads((model_dir / "config.json").read_text())
    assert tokenizer.get_vocab_size() <= config["vocab_size"]
    for token in tiny.SPECIAL_TOKENS:
        assert tokenizer.token_to_id(token) is not None
    assert config["eos_token_id"] == tokenizer.token_to_id("<|im_end|>")
    encoded = tokenizer.encode("<|im_start|>user\nHello<|im_end|>")
    assert encoded.ids[0] == tokenizer.token_to_id("<|im_start|>")
    assert tokenizer.decode(encoded.ids, skip_special_tokens=True) == "user\nHello"


@pytest.mark.parametrize(
    "value",
    [0.0, 1.0, -2.5, 3.0e-3, 65504.0],
    ids=["zero", "exact", "negative", "rounded-up", "rounded-up-into-the-exponent"],
)
def test_bf16_conversion_keeps_the_upper_half_of_float32(value):
    bits = np.frombuffer(tiny.to_bf16_bytes(np.array([value], dtype=np.float32)), dtype="<u2")[0]
    restored = np.array([int(bits) << 16], dtype=np.uint32).view(np.float32)[0]
    assert restored == pytest.approx(value, rel=2**-8)


def test_generation_is_deterministic(tmp_path):
    tiny.make_model(tmp_path / "a")
    tiny.make_model(tmp_path / "b")
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

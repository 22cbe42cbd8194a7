"""Quantize a Hugging Face causal LM to W4A16 (AWQ or GPTQ) with llm-compressor, for vLLM.

Two subcommands, shipped by the quantize role:

    python3 quantize_model.py plan  --source DIR --output DIR ...   (stdlib only: any python3)
    python3 quantize_model.py run   --source DIR --output DIR ...   (the role's virtualenv)

`plan` answers every question the role must ask before it changes the host (is the source already
quantized, is it MoE, does the group size divide every input dimension, the fingerprint, the memory the
run needs, whether the output directory is writable) and prints them as one JSON object. `run` quantizes
into a temporary directory beside the output, writes the fingerprint last, then swaps the directory in,
so a failed run never leaves an output that looks finished.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
import time
from pathlib import Path

FINGERPRINT_NAME = ".qwen-infra-quantize.json"
# The model_fetch role's completion marker: it carries a sha256 of every file, so it identifies the source.
FETCH_MARKER_NAME = ".qwen-infra-complete.json"
METHODS = ("awq", "gptq")
MOE_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")
GIB = 1024**3


class PlanError(ValueError):
    """Bad input, reported as a one-line message to the role."""


def read_config(source: Path) -> dict:
    path = source / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise PlanError(f"{path} does not exist: point quantize_source_dir at a model directory") from exc


def safetensors_header(path: Path) -> bytes:
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        return handle.read(length)


def source_identity(source: Path) -> dict:
    """What identifies the source weights cheaply: model_fetch's marker where it exists (it holds every
    file's sha256), else config.json, the safetensors index and every shard's header (names, shapes,
    dtypes and offsets), plus each shard's size."""
    digest = hashlib.sha256()
    marker = source / FETCH_MARKER_NAME
    if marker.is_file():
        digest.update(marker.read_bytes())
        return {"kind": "fetch-marker", "sha256": digest.hexdigest()}
    for name in ("config.json", "model.safetensors.index.json"):
        if (source / name).is_file():
            digest.update(name.encode() + b"\0" + (source / name).read_bytes())
    for shard in sorted(source.glob("*.safetensors")):
        digest.update(shard.name.encode() + b"\0" + str(shard.stat().st_size).encode())
        digest.update(safetensors_header(shard))
    return {"kind": "headers", "sha256": digest.hexdigest()}


def recipe(args: argparse.Namespace) -> dict:
    return {
        "method": args.method,
        "scheme": "W4A16" if args.method == "gptq" else "W4A16_ASYM",
        "group_size": args.group_size,
        "ignore": sorted(args.ignore),
        "num_samples": args.num_samples,
        "max_seq_length": args.max_seq_length,
        "calibration": calibration_identity(Path(args.calibration)) if args.calibration else None,
    }


def calibration_identity(path: Path) -> str:
    """sha256 of the calibration data (file, or every file of a dataset directory)."""
    if not path.exists():
        return "missing"
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for item in files:
        digest.update(str(item.relative_to(path) if path.is_dir() else item.name).encode() + b"\0")
        with item.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fingerprint(args: argparse.Namespace) -> dict:
    return {
        "source": source_identity(Path(args.source)),
        "recipe": recipe(args),
        "llmcompressor": args.tool_version,
    }


def input_dims(config: dict) -> dict[str, int]:
    """Input features of the linear layers the recipe quantizes (lm_head is left in bf16)."""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    dims = {"hidden_size (q/k/v, gate/up)": hidden, "heads x head_dim (o_proj)": heads * head_dim}
    if config.get("intermediate_size"):
        dims["intermediate_size (down_proj)"] = int(config["intermediate_size"])
    if config.get("moe_intermediate_size"):
        dims["moe_intermediate_size (expert down_proj)"] = int(config["moe_intermediate_size"])
    return dims


def group_size_problems(config: dict, group_size: int) -> list[str]:
    return [
        f"{name} = {dim} is not a multiple of the group size {group_size}"
        for name, dim in input_dims(config).items()
        if dim % group_size
    ]


def experts(config: dict) -> int:
    text = config.get("text_config") or {}
    for key in MOE_KEYS:
        value = config.get(key) or text.get(key)
        if value:
            return int(value)
    return 0


def weight_bytes(source: Path) -> int:
    return sum(p.stat().st_size for p in source.glob("*.safetensors"))


def nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def memory_available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def plan(args: argparse.Namespace) -> dict:
    source, output = Path(args.source), Path(args.output)
    config = read_config(source)
    weights = weight_bytes(source)
    # llm-compressor loads the whole model on the CPU, keeps copies of the layer it calibrates and the
    # calibration activations. Measured on an H100 host (roles/quantize/README.md, Qwen3-8B widths, 4
    # layers, 2.6 GiB of bf16 weights): 14.5 GiB peak RSS, i.e. about 5x the weights + 2 GiB.
    ram_needed = 5 * weights + 2 * GIB
    # On a GPU the sequential pipeline moves one decoder layer at a time (about weights / layers), with
    # GPTQ's Hessians or AWQ's activation caches beside it; the same run peaked at 4.2 GiB (AWQ) and
    # 6.3 GiB (GPTQ) on the GPU; three layers' worth plus a fixed 5 GiB (6.9 GiB there) covers it.
    layers = max(int(config.get("num_hidden_layers") or 1), 1)
    gpu_needed = 3 * weights // layers + 5 * GIB
    existing = nearest_existing(output.parent)
    stored = {}
    if (output / FINGERPRINT_NAME).is_file():
        stored = json.loads((output / FINGERPRINT_NAME).read_text())
    wanted = fingerprint(args)
    free = shutil.disk_usage(existing).free if existing.exists() else 0
    return {
        "quantized": bool(config.get("quantization_config")),
        "experts": experts(config),
        "group_size_problems": group_size_problems(config, args.group_size),
        "weight_bytes": weights,
        "ram_needed_bytes": ram_needed,
        "ram_available_bytes": memory_available_bytes(),
        "gpu_needed_bytes": gpu_needed,
        # W4A16 weights are about a quarter of bf16; the temporary directory sits beside the output.
        "disk_needed_bytes": weights // 3 + 64 * 1024**2,
        "disk_free_bytes": free,
        "output_parent": str(existing),
        "output_writable": existing.is_dir() and os.access(existing, os.W_OK | os.X_OK),
        # A non-empty directory this script did not write is never replaced.
        "output_foreign": output.is_dir() and not stored and any(output.iterdir()),
        "fingerprint": wanted,
        "up_to_date": stored == wanted,
    }


def calibration_texts(path: Path, limit: int) -> list[str]:
    """Lines of a text file, the "text" field of a JSONL file, or the text column of a dataset saved with
    datasets.save_to_disk (or a directory of .jsonl/.txt/.parquet files)."""
    texts: list[str] = []
    if path.is_dir():
        import datasets  # noqa: PLC0415 - only the run subcommand needs it

        try:
            data = datasets.load_from_disk(str(path))
        except FileNotFoundError:
            data = datasets.load_dataset(str(path), split="train")
        if isinstance(data, datasets.DatasetDict):
            data = data["train"] if "train" in data else next(iter(data.values()))
        texts = [row["text"] for row in data.select(range(min(limit, len(data))))]
    else:
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if line:
                texts.append(json.loads(line)["text"] if path.suffix == ".jsonl" else line)
    texts = [text for text in texts if text.strip()][:limit]
    if not texts:
        raise PlanError(f"no calibration text in {path}: AWQ and GPTQ need representative samples")
    return texts


def run(args: argparse.Namespace) -> dict:
    from importlib.metadata import version  # noqa: PLC0415

    installed = version("llmcompressor")
    if installed != args.tool_version:
        raise PlanError(f"llmcompressor {installed} is installed, the recipe pins {args.tool_version}")
    checked = plan(args)
    if checked["up_to_date"]:
        return {"changed": False, "msg": f"{args.output} already holds this quantization"}
    refuse(checked, args)

    import torch  # noqa: PLC0415
    from datasets import Dataset  # noqa: PLC0415
    from llmcompressor import oneshot  # noqa: PLC0415
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier  # noqa: PLC0415
    from llmcompressor.modifiers.transform import AWQModifier  # noqa: PLC0415
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    torch.manual_seed(0)
    if not torch.accelerator.is_available():
        cpu_only_workarounds()
    started = time.monotonic()
    wanted = checked["fingerprint"]["recipe"]
    scheme = {
        "targets": ["Linear"],
        "ignore": wanted["ignore"],
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {
                    "num_bits": 4,
                    "type": "int",
                    "symmetric": args.method == "gptq",
                    "strategy": "group",
                    "group_size": args.group_size,
                },
            }
        },
    }
    if args.method == "awq":
        modifiers = [AWQModifier(duo_scaling=True), QuantizationModifier(**scheme)]
    else:
        modifiers = [GPTQModifier(**scheme)]

    tokenizer = AutoTokenizer.from_pretrained(args.source)
    model = AutoModelForCausalLM.from_pretrained(args.source, dtype="auto")
    texts = calibration_texts(Path(args.calibration), args.num_samples)
    encoded = tokenizer(texts, truncation=True, max_length=args.max_seq_length, add_special_tokens=False)
    dataset = Dataset.from_dict(
        {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    )

    output = Path(args.output)
    staging = output.with_name(output.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    oneshot(
        model=model,
        dataset=dataset,
        recipe=modifiers,
        max_seq_length=args.max_seq_length,
        num_calibration_samples=len(texts),
        shuffle_calibration_samples=False,
    )
    model.save_pretrained(staging, save_compressed=True)
    tokenizer.save_pretrained(staging)
    # Written last: a directory without it is never taken for a finished quantization.
    (staging / FINGERPRINT_NAME).write_text(json.dumps(checked["fingerprint"], indent=2) + "\n")
    previous = output.with_name(output.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if output.exists():
        output.rename(previous)
    staging.rename(output)
    shutil.rmtree(previous, ignore_errors=True)
    seconds = time.monotonic() - started
    return {
        "changed": True,
        "seconds": round(seconds, 2),
        "msg": f"quantized into {output} in {seconds:.1f} s",
    }


def refuse(checked: dict, args: argparse.Namespace) -> None:
    """The role's refusals, repeated here so the script is safe to run by hand."""
    if checked["quantized"]:
        raise PlanError(f"{args.source} is already quantized (config.json has quantization_config)")
    if checked["experts"] and not args.allow_moe:
        raise PlanError(
            f"{args.source} is a mixture-of-experts model ({checked['experts']} experts): quantizing it is "
            "fragile and needs the whole model in host RAM; prefer an official pre-quantized checkpoint "
            "(e.g. Qwen/Qwen3-235B-A22B-FP8) or pass --allow-moe"
        )
    if checked["group_size_problems"]:
        raise PlanError("group size does not divide the layers: " + "; ".join(checked["group_size_problems"]))
    if not args.calibration or not Path(args.calibration).exists():
        raise PlanError(
            f"{args.method.upper()} needs calibration data: --calibration "
            f"{args.calibration or '(empty)'} is not a file or dataset directory"
        )
    if checked["output_foreign"]:
        raise PlanError(
            f"{args.output} holds files but no {FINGERPRINT_NAME}: it was not written by this script"
        )
    if not checked["output_writable"]:
        raise PlanError(f"{checked['output_parent']} is not writable: {args.output} cannot be created there")


def cpu_only_workarounds() -> None:
    """llmcompressor 0.13-0.14's AWQ pins its activation cache for faster host-to-GPU copies, and pinning
    raises "Cannot access accelerator device" on a host without one. Pinning only matters for GPU copies,
    so on a CPU-only host it is skipped."""
    from llmcompressor.pipelines.cache import IntermediatesCache  # noqa: PLC0415

    IntermediatesCache.pin_memory = lambda self, batch_index, input_names=None: None


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parse.add_argument("command", choices=["plan", "run"])
    parse.add_argument("--source", required=True)
    parse.add_argument("--output", required=True)
    parse.add_argument("--method", choices=METHODS, required=True)
    parse.add_argument("--group-size", type=int, default=128)
    parse.add_argument("--calibration", default="")
    parse.add_argument("--num-samples", type=int, default=256)
    parse.add_argument("--max-seq-length", type=int, default=512)
    parse.add_argument("--ignore", action="append", default=None)
    parse.add_argument("--allow-moe", action="store_true")
    parse.add_argument("--tool-version", required=True, help="the llmcompressor version the role pins")
    return parse


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.ignore = args.ignore or ["lm_head"]
    try:
        result = plan(args) if args.command == "plan" else run(args)
    except PlanError as exc:
        print(json.dumps({"failed": True, "msg": str(exc)}))
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Entry point of the `qwen-infra` command.

    qwen-infra size MODEL [--gpu NAME | --gpu-memory-gib G] [--tp N] [--pp N] ...   will it fit?
    qwen-infra recommend MODEL [--precision P] [--max-model-len L] [--concurrency C]  what to buy

Exit status of `size`: 0 fits, 1 does not fit (or the layout is invalid), 2 unusable arguments.
Exit status of `recommend`: 0 a layout was found, 1 none fits, 2 unusable arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .catalogs.gpus import GPUS
from .sizing.architecture import resolve_model, with_quantization
from .sizing.devices import Device, gpu_from_catalog
from .sizing.errors import SizingError
from .sizing.layout import Plan
from .sizing.memory import SizingResult
from .sizing.recommend import recommend
from .sizing.suggest import size_with_fixes
from .sizing.vllm_rules import DEFAULT_GPU_MEMORY_UTILIZATION, VLLM_VERSION
from .sizing.weights import checkpoint_tensors
from .units import GIB

FITS, DOES_NOT_FIT, BAD_ARGUMENTS = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwen-infra",
        description="Plan and size vLLM deployments of Qwen models. "
        "Provisioning is `pulumi up` in infra/; configuration is `ansible-playbook site.yml`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_size(commands)
    _add_recommend(commands)
    return parser


def _model_help() -> str:
    return (
        "a catalog name such as Qwen/Qwen3-32B (a -AWQ, -GPTQ-Int4 or -FP8 suffix implies that "
        "quantization) or a directory containing config.json (and, if present, *.safetensors)"
    )


def _add_size(commands) -> None:
    size = commands.add_parser(
        "size",
        help="size one model on one GPU type with given vLLM arguments",
        description="Predict what vLLM will report at start-up (weights and KV cache per GPU, KV tokens, "
        "maximum concurrency) and whether the plan fits. Exit status: 0 fits, 1 does not fit, 2 bad "
        "arguments.",
    )
    size.add_argument("model", metavar="MODEL", help=_model_help())
    gpu = size.add_mutually_exclusive_group()
    gpu.add_argument("--gpu", metavar="NAME", help=f"catalog GPU (default H100-80GB): {', '.join(GPUS)}")
    gpu.add_argument("--gpu-memory-gib", type=float, metavar="G", help="usable memory per GPU in GiB instead")
    size.add_argument("--tp", type=int, default=1, metavar="N", help="tensor-parallel size (default 1)")
    size.add_argument("--pp", type=int, default=1, metavar="N", help="pipeline-parallel size (default 1)")
    size.add_argument("--enable-expert-parallel", action="store_true", help="MoE: whole experts per GPU")
    size.add_argument("--quantization", choices=["none", "awq", "gptq", "fp8"], help="weight quantization")
    size.add_argument("--kv-cache-dtype", choices=["auto", "fp8"], default="auto", help="KV cache dtype")
    size.add_argument("--max-model-len", type=int, metavar="L", help="context length (default: the model's)")
    size.add_argument("--max-num-seqs", type=int, metavar="S", help="default: vLLM's for the GPU")
    size.add_argument("--max-num-batched-tokens", type=int, metavar="T", help="default: vLLM's for the GPU")
    size.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=DEFAULT_GPU_MEMORY_UTILIZATION,
        metavar="U",
        help=f"fraction of GPU memory vLLM may use (default {DEFAULT_GPU_MEMORY_UTILIZATION}, "
        f"vLLM {VLLM_VERSION}'s)",
    )
    size.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _add_recommend(commands) -> None:
    rec = commands.add_parser(
        "recommend",
        help="the smallest GPU layout that serves a model at a context length and concurrency",
        description="Try every catalog GPU with TP 1/2/4/8 (then PP across nodes) and report the "
        "smallest layout that fits CONCURRENCY requests of MAX_MODEL_LEN tokens each, cheapest GPU first "
        "among equal GPU counts. Exit status: 0 found, 1 nothing fits, 2 bad arguments.",
    )
    rec.add_argument("model", metavar="MODEL", help=_model_help())
    rec.add_argument("--precision", choices=["bf16", "fp8", "awq", "gptq"], default="bf16")
    rec.add_argument("--max-model-len", type=int, metavar="L", help="context length (default: the model's)")
    rec.add_argument("--concurrency", type=int, default=1, metavar="C", help="full-length requests at once")
    rec.add_argument("--kv-cache-dtype", choices=["auto", "fp8"], default="auto")
    rec.add_argument("--gpu", action="append", metavar="NAME", help="limit to these GPUs (repeatable)")
    rec.add_argument(
        "--max-gpus", type=int, default=32, metavar="N", help="largest layout to try (default 32)"
    )
    rec.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _fail(command: str, message: str) -> int:
    print(f"qwen-infra {command}: error: {message}", file=sys.stderr)
    return BAD_ARGUMENTS


# What to serve when a catalog model is sized with a quantization it does not carry itself: the
# official pre-quantized checkpoint for 4-bit schemes, vLLM's online FP8 for fp8.
SERVED_SUFFIX = {"awq": "-AWQ", "gptq": "-GPTQ-Int4"}


def _load_model(model: str, quantization: str | None):
    """(architecture, checkpoint tensors or None, the words to put after `vllm serve`)."""
    arch, checkpoint = resolve_model(model)
    already_quantized = arch.quantization.is_quantized
    arch = with_quantization(arch, quantization)
    tensors = checkpoint_tensors(checkpoint) if checkpoint else None
    served = str(checkpoint) if checkpoint else arch.name
    if quantization in SERVED_SUFFIX and not already_quantized and not checkpoint:
        served += SERVED_SUFFIX[quantization]
    elif quantization in {"awq", "gptq", "fp8"} and not already_quantized:
        served += f" --quantization {quantization}"
    return arch, tensors, served


def _device(args) -> Device:
    if args.gpu_memory_gib is not None:
        if args.gpu_memory_gib <= 0:
            raise SizingError(f"--gpu-memory-gib must be positive, not {args.gpu_memory_gib}")
        return Device(f"{args.gpu_memory_gib:g} GiB GPU", int(args.gpu_memory_gib * GIB))
    return gpu_from_catalog(args.gpu or "H100-80GB")


def run_size(args) -> int:
    try:
        arch, tensors, served = _load_model(args.model, args.quantization)
        device = _device(args)
        plan = Plan(
            tensor_parallel_size=args.tp,
            pipeline_parallel_size=args.pp,
            enable_expert_parallel=args.enable_expert_parallel,
            kv_cache_dtype=args.kv_cache_dtype,
            max_model_len=args.max_model_len,
            max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens,
            gpu_memory_utilization=args.gpu_memory_utilization,
        )
        result = size_with_fixes(arch, device, plan, tensors)
    except SizingError as error:
        return _fail("size", str(error))
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(format_size(served, result))
    return FITS if result.fits else DOES_NOT_FIT


def run_recommend(args) -> int:
    try:
        arch, _, served = _load_model(args.model, None if args.precision == "bf16" else args.precision)
        if args.max_model_len is not None and args.max_model_len < 1:
            raise SizingError(f"--max-model-len must be positive, not {args.max_model_len}")
        if args.max_gpus < 1:
            raise SizingError(f"--max-gpus must be at least 1, not {args.max_gpus}")
        options = recommend(
            arch,
            max_model_len=args.max_model_len,
            concurrency=args.concurrency,
            gpus=args.gpu,
            max_gpus=args.max_gpus,
            kv_cache_dtype=args.kv_cache_dtype,
        )
    except SizingError as error:
        return _fail("recommend", str(error))
    if args.json:
        print(
            json.dumps(
                {
                    "model": arch.name,
                    "quantization": arch.quantization.label(),
                    "max_model_len": args.max_model_len or arch.max_model_len_limit,
                    "concurrency": args.concurrency,
                    "recommendation": options[0].as_dict() if options else None,
                    "options": [option.as_dict() for option in options],
                },
                indent=2,
            )
        )
    else:
        print(format_recommendations(served, arch, args, options))
    return FITS if options else DOES_NOT_FIT


def _gib(value: float) -> str:
    return f"{value:8.2f} GiB"


def format_size(model: str, result: SizingResult) -> str:
    b = result.breakdown
    plan = b["plan"]
    lines = [
        f"{b['model']} ({b['quantization']}) on {b['gpus']} x {b['gpu']} "
        f"({b['usable_gib_per_gpu']:.2f} GiB usable each)",
        f"  layout      TP {plan['tensor_parallel_size']} x PP {plan['pipeline_parallel_size']}"
        + ("  + expert parallel" if plan["enable_expert_parallel"] else ""),
        f"  batch       max_num_batched_tokens {plan['max_num_batched_tokens']}, "
        f"max_num_seqs {plan['max_num_seqs']}"
        f", kv cache {plan['kv_cache_dtype']}, block {plan['block_size']}",
        f"  accounting  vLLM {b['vllm_version']}, weights from {b['weights_source']}",
        "",
    ]
    stages = b["stages"]
    header = (
        "  per GPU" + "".join(f"{'stage ' + str(s['stage']):>14}" for s in stages)
        if len(stages) > 1
        else "  per GPU"
    )
    lines.append(header)
    rows = [
        (f"reserved ({plan['gpu_memory_utilization']:g} x usable)", "reservation_gib"),
        ("weights", "weights_gib"),
        ("profiling activation peak", "activation_peak_gib"),
        ("non-torch (cuBLAS, workspaces)", "non_torch_gib"),
        ("CUDA-graph estimate", "cudagraph_gib"),
        ("KV cache", "available_kv_gib"),
    ]
    for label, key in rows:
        lines.append(f"    {label:<32}" + "".join(_gib(s[key]).rjust(14) for s in stages))
    lines += [
        f"    {'outside the reservation':<32}{_gib(b['outside_reservation_gib']).rjust(14)}  (CUDA context)",
        "",
        f"  KV cache tokens            {result.kv_cache_tokens:,}",
        f"  max concurrency            {result.max_concurrency:g}x at {result.max_model_len:,} tokens "
        "per request",
        f"  longest context that fits  {result.max_model_len_that_fits:,} tokens",
        "",
        "  FITS" if result.fits else "  DOES NOT FIT",
    ]
    lines += [f"    - {problem}" for problem in result.problems]
    lines += ["", "  vllm serve " + model + " " + " ".join(b["vllm_args"])]
    return "\n".join(lines)


def format_recommendations(model: str, arch, args, options: list) -> str:
    max_len = args.max_model_len or arch.max_model_len_limit
    lines = [
        f"{arch.name} ({arch.quantization.label()}), {args.concurrency} request(s) of {max_len:,} tokens "
        "at once",
        "",
    ]
    if not options:
        lines.append(
            f"  nothing in the catalog fits within {args.max_gpus} GPUs: lower the context or use "
            "quantization"
        )
        return "\n".join(lines)
    lines.append(
        f"  {'GPU':<12}{'GPUs':>5}  {'layout':<14}{'weights/GPU':>12}{'KV tokens':>12}{'concurrency':>13}"
    )
    for option in options:
        layout = f"TP{option.plan.tensor_parallel_size} x PP{option.plan.pipeline_parallel_size}"
        if option.plan.enable_expert_parallel:
            layout += " EP"
        lines.append(
            f"  {option.gpu:<12}{option.gpus:>5}  {layout:<14}{option.result.weights_gib_per_rank:>10.2f}  "
            f"{option.result.kv_cache_tokens:>11,}{option.result.max_concurrency:>12g}x"
        )
    best = options[0]
    lines += [
        "",
        f"  recommended: {best.gpus} x {best.gpu}",
        "  vllm serve " + model + " " + " ".join(best.plan.vllm_args()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return BAD_ARGUMENTS
    if args.command == "size":
        return run_size(args)
    return run_recommend(args)


if __name__ == "__main__":
    sys.exit(main())

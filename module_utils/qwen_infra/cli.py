"""Entry point of the `qwen-infra` command.

    qwen-infra size MODEL [--gpu NAME | --gpu-memory-gib G] [vLLM settings]          will it fit?
    qwen-infra command MODEL [vLLM settings] [--extra-arg WORD ...]                   what a host runs
    qwen-infra recommend MODEL [--precision P] [--max-model-len L] [--concurrency C]  what to buy
    qwen-infra bench --base-url URL --model NAME [--concurrency N | --rate R] ...     what it delivers

The vLLM settings are vLLM's own flags (--tensor-parallel-size, --max-model-len, ...), read into the
one server description (qwen_infra.server) that the hosts' units are built from.
Exit status of `size`: 0 fits, 1 does not fit (or the layout is invalid), 2 unusable arguments.
Exit status of `command`: 0 printed, 2 unusable arguments.
Exit status of `recommend`: 0 a layout was found, 1 none fits, 2 unusable arguments.
Exit status of `bench`: 0 every request succeeded, 1 some failed, 2 unusable arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .catalogs.gpus import GPUS
from .server import (
    ENTRY_POINT,
    FIELD_NAMES,
    SIZING_QUANTIZATION,
    ServerConfig,
    ServerConfigError,
    command_line,
    from_plan,
    from_settings,
    full_command,
    sizing_plan,
)
from .sizing.architecture import Architecture, resolve_model, with_quantization
from .sizing.devices import Device, gpu_from_catalog
from .sizing.errors import SizingError
from .sizing.memory import SizingResult
from .sizing.recommend import Recommendation, recommend
from .sizing.suggest import size_with_fixes
from .sizing.vllm_rules import (
    BLOCK_SIZES,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_VLLM_RELEASE,
    DTYPES,
    EXECUTOR_BACKENDS,
    KV_CACHE_DTYPES,
    OPTIMIZATION_LEVELS,
    QUANTIZATIONS,
    RELEASES,
    VLLM_VERSION,
)
from .sizing.weights import Tensor, checkpoint_tensors
from .units import GIB

FITS, DOES_NOT_FIT, BAD_ARGUMENTS = 0, 1, 2
# Bounds of what is worth sizing: no GPU has more memory, and no serving layout spans more GPUs.
MAX_GPU_MEMORY_GIB = 4096
MAX_GPUS = 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwen-infra",
        description="Plan and size vLLM deployments of Qwen models. "
        "Provisioning is `pulumi up` in infra/; configuration is `ansible-playbook site.yml`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_size(commands)
    _add_command(commands)
    _add_recommend(commands)
    _add_bench(commands)
    return parser


def _model_help() -> str:
    return (
        "a catalog name such as Qwen/Qwen3-32B (a -AWQ, -GPTQ-Int4 or -FP8 suffix implies that "
        "quantization) or a directory containing config.json (and, if present, *.safetensors)"
    )


def _add_server_settings(parser: argparse.ArgumentParser) -> None:
    """vLLM's own flags for every setting the server description models (qwen_infra.server)."""
    group = parser.add_argument_group("vLLM settings (vLLM's flags; defaults are vLLM's)")
    group.add_argument("--tensor-parallel-size", "--tp", type=int, default=1, metavar="N")
    group.add_argument("--pipeline-parallel-size", "--pp", type=int, default=1, metavar="N")
    group.add_argument("--data-parallel-size", "--dp", type=int, default=1, metavar="N")
    group.add_argument("--enable-expert-parallel", action="store_true", help="MoE: whole experts per GPU")
    group.add_argument("--quantization", choices=["none", *QUANTIZATIONS], help="weight quantization")
    group.add_argument("--kv-cache-dtype", choices=KV_CACHE_DTYPES, default="auto")
    group.add_argument("--dtype", choices=DTYPES, default="auto")
    group.add_argument("--max-model-len", type=int, metavar="L", help="context length (default: the model's)")
    group.add_argument("--max-num-seqs", type=int, metavar="S", help="default: vLLM's for the GPU")
    group.add_argument("--max-num-batched-tokens", type=int, metavar="T", help="default: vLLM's for the GPU")
    group.add_argument(
        "--gpu-memory-utilization",
        type=float,
        metavar="U",
        help=f"fraction of GPU memory vLLM may use (default {DEFAULT_GPU_MEMORY_UTILIZATION}, "
        f"vLLM {VLLM_VERSION}'s)",
    )
    group.add_argument("--block-size", type=int, choices=BLOCK_SIZES)
    group.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs")
    group.add_argument("--optimization-level", type=int, choices=OPTIMIZATION_LEVELS)
    group.add_argument("--distributed-executor-backend", choices=EXECUTOR_BACKENDS)
    group.add_argument("--served-model-name", metavar="NAME", help="default: the model's directory name")
    group.add_argument("--host", default=ServerConfig.host, help="address vLLM listens on")
    group.add_argument("--port", type=int, default=ServerConfig.port)


def _add_size(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    _add_server_settings(size)
    size.add_argument(
        "--vllm-version",
        metavar="V",
        default=DEFAULT_VLLM_RELEASE,
        help="the vLLM release to model: what it counts in its memory budget "
        f"(default {DEFAULT_VLLM_RELEASE}, the role's; known: {', '.join(r.version for r in RELEASES)})",
    )
    size.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "command",
        help="print the exact command line a host's vLLM unit runs for these settings",
        description="Build the server's command line the way the vllm role's unit does (the same "
        "function), after the same checks of the settings. Exit status: 0 printed, 2 bad arguments.",
    )
    command.add_argument("model", metavar="MODEL", help="the model directory on the host (vLLM's --model)")
    _add_server_settings(command)
    command.add_argument(
        "--extra-arg",
        action="append",
        default=[],
        metavar="WORD",
        help="one word of vllm_extra_args (repeatable); a setting listed above is refused here",
    )
    command.add_argument("--python", default="python3", help="the interpreter of vLLM's virtualenv")
    command.add_argument("--json", action="store_true", help="print the argv as a JSON list")


def _add_recommend(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    rec.add_argument("--kv-cache-dtype", choices=KV_CACHE_DTYPES, default="auto")
    rec.add_argument("--gpu", action="append", metavar="NAME", help="limit to these GPUs (repeatable)")
    rec.add_argument(
        "--max-gpus", type=int, default=32, metavar="N", help="largest layout to try (default 32)"
    )
    rec.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench",
        help="load an OpenAI-compatible endpoint and report latency and throughput",
        description="Send streamed requests at a fixed concurrency or rate and report requests sent / "
        "succeeded / failed by status, time to first token, inter-token and end-to-end latency (median, "
        "P90, P99), output tokens/s and requests/s. The key is read from the environment or a file, never "
        "the command line. Needs the bench extra (httpx, matplotlib). Exit status: 0 no request failed, "
        "1 some failed, 2 bad arguments.",
    )
    bench.add_argument("--base-url", required=True, help="the endpoint's OpenAI base URL, ending in /v1")
    bench.add_argument("--model", required=True, help="the served model name")
    key = bench.add_mutually_exclusive_group()
    key.add_argument(
        "--api-key-env", default="QWEN_INFRA_API_KEY", metavar="VAR", help="default: %(default)s"
    )
    key.add_argument("--api-key-file", type=Path, metavar="FILE")
    bench.add_argument("--ca-bundle", metavar="PEM", help="CA to trust for https (the lab's own CA)")
    load = bench.add_mutually_exclusive_group()
    load.add_argument("--concurrency", type=int, metavar="N", help="requests in flight (default 8)")
    load.add_argument("--rate", type=float, metavar="R", help="arrivals per second (Poisson)")
    stop = bench.add_mutually_exclusive_group()
    stop.add_argument("--requests", type=int, metavar="N", help="requests to send (default 100)")
    stop.add_argument("--duration", type=float, metavar="S", help="seconds to send for")
    bench.add_argument("--prompt-tokens", type=int, default=256, metavar="T")
    bench.add_argument("--output-tokens", type=int, default=128, metavar="T", help="generated, EOS ignored")
    bench.add_argument(
        "--dataset", type=Path, metavar="JSONL", help='lines of {"prompt": ..., "output_tokens": N}'
    )
    bench.add_argument(
        "--tokenizer", type=Path, metavar="DIR", help="a tokenizer.json for exact prompt lengths"
    )
    bench.add_argument("--completions", action="store_true", help="use /v1/completions instead of chat")
    bench.add_argument(
        "--compare", type=Path, metavar="JSON", help="`qwen-infra size --json` output for the host"
    )
    bench.add_argument("--json", action="store_true", help="print the summary as JSON")
    bench.add_argument(
        "--output", type=Path, metavar="FILE", help="also write the JSON summary (with every request)"
    )
    bench.add_argument("--plot", type=Path, metavar="PNG", help="latency and throughput over time")
    bench.add_argument("--no-progress", action="store_true")


def _fail(command: str, message: str) -> int:
    print(f"qwen-infra {command}: error: {message}", file=sys.stderr)
    return BAD_ARGUMENTS


# What to serve when a catalog model is sized with a quantization it does not carry itself: the
# official pre-quantized checkpoint for 4-bit schemes (vLLM's online FP8 needs no other checkpoint).
SERVED_SUFFIX = {"awq": "-AWQ", "gptq": "-GPTQ-Int4"}


def _load_model(model: str, quantization: str | None) -> tuple[Architecture, list[Tensor] | None, str]:
    """(architecture at that quantization, checkpoint tensors or None, the model vLLM is given)."""
    arch, checkpoint = resolve_model(model)
    already_quantized = arch.quantization.is_quantized
    arch = with_quantization(arch, None if quantization is None else _sizing_flag(quantization))
    tensors = checkpoint_tensors(checkpoint) if checkpoint else None
    served = str(checkpoint) if checkpoint else arch.name
    flag = _sizing_flag(quantization)
    if flag in SERVED_SUFFIX and not already_quantized and not checkpoint:
        served += SERVED_SUFFIX[flag]
    return arch, tensors, served


def _sizing_flag(quantization: str | None) -> str | None:
    if quantization in (None, "none"):
        return quantization
    return SIZING_QUANTIZATION.get(quantization, quantization)


def _server(args: argparse.Namespace, model: str, extra_args: Sequence[str] = ()) -> ServerConfig:
    """The server description from the settings on the command line (ServerConfigError if unusable)."""
    settings = {
        name: getattr(args, name)
        for name in FIELD_NAMES
        if name not in ("model", "served_model_name", "extra_args") and hasattr(args, name)
    }
    settings["quantization"] = None if args.quantization in (None, "none") else args.quantization
    settings["model"] = model
    settings["served_model_name"] = args.served_model_name or Path(model.rstrip("/")).name
    settings["extra_args"] = list(extra_args)
    return from_settings(settings)


def _device(args: argparse.Namespace) -> Device:
    if args.gpu_memory_gib is not None:
        if not (math.isfinite(args.gpu_memory_gib) and 1 <= args.gpu_memory_gib <= MAX_GPU_MEMORY_GIB):
            raise SizingError(
                f"--gpu-memory-gib must be positive, 1 to {MAX_GPU_MEMORY_GIB}, not {args.gpu_memory_gib}"
            )
        return Device(f"{args.gpu_memory_gib:g} GiB GPU", int(args.gpu_memory_gib * GIB))
    return gpu_from_catalog(args.gpu or "H100-80GB")


def run_size(args: argparse.Namespace) -> int:
    try:
        arch, tensors, served = _load_model(args.model, args.quantization)
        server = _server(args, served)
        device = _device(args)
        result = size_with_fixes(arch, device, sizing_plan(server, vllm_version=args.vllm_version), tensors)
    except (SizingError, ServerConfigError) as error:
        return _fail("size", str(error))
    if args.json:
        print(json.dumps({**result.as_dict(), "command": command_line(server)}, indent=2))
    else:
        print(format_size(server, result))
    return FITS if result.fits else DOES_NOT_FIT


def run_command(args: argparse.Namespace) -> int:
    try:
        server = _server(args, args.model, args.extra_arg)
    except ServerConfigError as error:
        return _fail("command", str(error))
    argv = full_command(server, args.python)
    print(json.dumps(argv) if args.json else shlex.join(argv))
    return FITS


def run_recommend(args: argparse.Namespace) -> int:
    try:
        arch, _, served = _load_model(args.model, None if args.precision == "bf16" else args.precision)
        if args.max_model_len is not None and args.max_model_len < 1:
            raise SizingError(f"--max-model-len must be positive, not {args.max_model_len}")
        if not 1 <= args.max_gpus <= MAX_GPUS:
            raise SizingError(f"--max-gpus must be 1-{MAX_GPUS}, not {args.max_gpus}")
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
    online = "fp8" if args.precision == "fp8" and not served.endswith("-FP8") else None
    commands = [_recommended_server(served, option, online) for option in options]
    if args.json:
        print(
            json.dumps(
                {
                    "model": arch.name,
                    "quantization": arch.quantization.label(),
                    "max_model_len": args.max_model_len or arch.max_model_len_limit,
                    "concurrency": args.concurrency,
                    "recommendation": {**options[0].as_dict(), "command": commands[0]} if options else None,
                    "options": [
                        {**option.as_dict(), "command": command}
                        for option, command in zip(options, commands, strict=True)
                    ],
                },
                indent=2,
            )
        )
    else:
        print(format_recommendations(arch, args, options, commands))
    return FITS if options else DOES_NOT_FIT


def run_bench(args: argparse.Namespace) -> int:
    try:
        from .bench import command  # noqa: PLC0415 - httpx and matplotlib only where bench runs
    except ImportError as error:
        return _fail("bench", f"{error.name} is missing: pip install 'qwen-infra[bench]'")
    return command.run(args)


def _recommended_server(served: str, option: Recommendation, quantization: str | None) -> list[str]:
    """The command line of a recommended layout (the served checkpoint, its name, the layout)."""
    server = from_plan(
        option.plan,
        model=served,
        served_model_name=Path(served).name,
        quantization=quantization,
    )
    return command_line(server)


def _gib(value: float) -> str:
    return f"{value:8.2f} GiB"


def format_size(server: ServerConfig, result: SizingResult) -> str:
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
    lines += ["", "  " + shlex.join(full_command(server, "python3"))]
    return "\n".join(lines)


def format_recommendations(
    arch: Architecture, args: argparse.Namespace, options: list[Recommendation], commands: list[list[str]]
) -> str:
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
        "  " + shlex.join(["python3", *ENTRY_POINT, *commands[0]]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return BAD_ARGUMENTS
    runners = {"size": run_size, "command": run_command, "recommend": run_recommend, "bench": run_bench}
    return runners[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

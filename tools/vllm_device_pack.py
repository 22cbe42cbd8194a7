"""Download, trim, pack and split the vLLM that runs on the lent H200 machine (no network there).

    .venv/bin/python tools/vllm_device_pack.py --out /work/main/.device-carry

The device has Python 3.12, torch 2.11.0+cu130, transformers 5.17 and the packages KINDS.md lists.
vLLM 0.26.0 is the newest release whose wheel pins torch==2.11.0 (../shared/reference/environment.md).
This script downloads it and the dependencies the device lacks (exact versions, Python 3.12 manylinux
wheels, --no-deps), installs them into one staging folder with `pip install --target`, removes what a
dense or MoE bf16 start on Hopper never loads, and writes `vllm-<version>-py312.tar.xz` split into parts
of at most --part-mib MiB (part1/..., part2/..., one folder per device call, since each call carries
at most 64 MiB). tools/h200_vllm_run.py carries the rest (ansible-core, the model folders, the cases).

On the device: `cat part*/vllm-*.tar.xz.* | xz -dc | tar -x -C /tmp/site; PYTHONPATH=/tmp/site`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VLLM_VERSION = "0.26.0"

# What the device lacks, resolved by `pip install --dry-run --report` for Python 3.12 against vLLM
# 0.26.0's requirements, minus the packages the device image has (KINDS.md's list). Versions as resolved
# on 2026-12-02.
DEPENDENCIES = {
    "annotated-types": "0.8.0",
    "anthropic": "2.16.0",
    "apache-tvm-ffi": "0.1.10",  # xgrammar 0.2.7 needs it; vLLM pins this version
    "astor": "0.8.1",
    "blake3": "1.0.11",
    "cachetools": "8.0.2",
    "cbor2": "6.3.0",
    "compressed-tensors": "0.17.0",
    "depyf": "0.20.0",
    "dill": "0.4.1",
    "dnspython": "2.9.2",
    "docstring-parser": "0.18.0",
    "email-validator": "2.4.0",
    "fastapi": "0.136.3",
    "googleapis-common-protos": "1.76.0",
    "httpcore2": "2.16.2",
    "httptools": "0.9.0",
    "httpx2": "2.16.2",
    "ijson": "3.6.0",
    "interegular": "0.3.3",
    "jiter": "0.19.0",
    "jmespath": "1.1.0",
    "jsonschema": "4.26.0",
    "jsonschema-specifications": "2025.9.1",
    "lark": "1.2.2",
    # vLLM loads it lazily, but a class annotation in v1/structured_output/backend_guidance.py touches
    # it when the API server is imported (seen on the H200: "No module named 'llguidance'").
    "llguidance": "1.7.6",
    "lm-format-enforcer": "0.11.3",
    "loguru": "0.7.3",
    "mcp": "2.3.0",
    "mcp-types": "2.3.0",
    "mistral-common": "1.13.1",
    "model-hosting-container-standards": "0.1.16",
    "msgspec": "0.23.0",
    "nvtx": "0.2.15",
    "openai": "3.57.0",
    "openai-harmony": "0.0.8",
    "opentelemetry-api": "1.45.2",
    "opentelemetry-exporter-http-transport": "0.66b2",
    "opentelemetry-exporter-otlp": "1.45.2",
    "opentelemetry-exporter-otlp-common": "0.66b2",
    "opentelemetry-exporter-otlp-proto-common": "1.45.2",
    "opentelemetry-exporter-otlp-proto-grpc": "1.45.2",
    "opentelemetry-exporter-otlp-proto-http": "1.45.2",
    "opentelemetry-proto": "1.45.2",
    "opentelemetry-sdk": "1.45.2",
    "opentelemetry-semantic-conventions": "0.66b2",
    "opentelemetry-semantic-conventions-ai": "0.5.1",
    "outlines-core": "0.2.14",
    "partial-json-parser": "0.2.1.1.post7",
    "prometheus-fastapi-instrumentator": "8.1.0",
    "pybase64": "1.5.1",
    "pycountry": "26.2.16",  # mistral_common imports it when vLLM starts
    "pydantic": "2.14.4",
    "pydantic-core": "2.50.5",
    "pydantic-extra-types": "2.11.1",
    "pydantic-settings": "2.16.3",
    "pyjwt": "2.15.1",
    "python-dotenv": "1.2.4",
    "python-json-logger": "4.2.0",
    "python-multipart": "0.0.34",
    "pyzmq": "27.3.0",
    "referencing": "0.37.0",
    "rpds-py": "2026.9.1",
    "setproctitle": "1.3.8",
    "sniffio": "1.3.1",
    "sse-starlette": "3.7.1",
    "starlette": "1.10.0",
    "supervisor": "4.3.0",
    "truststore": "0.10.5",
    "typing-inspection": "0.4.5",
    "uvicorn": "0.55.0",
    "watchfiles": "1.3.0",
    "websockets": "17.4",
    "xgrammar": "0.2.7",
}

# Required by vLLM 0.26.0's metadata but never loaded by a dense or MoE bf16 start on Hopper with
# VLLM_USE_FLASHINFER_SAMPLER=0 and the FA3 attention backend; left out (and why), so the pack stays two
# parts: flashinfer-python (sampler/attention alternative, JIT-compiles with nvcc), tilelang, quack-kernels,
# humming-kernels, tokenspeed-mla and nvidia-cutlass-dsl (kernels for other GPUs, MLA models or FP4/FP8
# paths), torchcodec and PyNvVideoCodec (video inputs), fastsafetensors (GDS weight loading; dummy weights
# load nothing), nvidia-cudnn-frontend, fastapi[standard]'s CLI extras (fastapi-cli, fastapi-cloud-cli) and
# cryptography (PyJWT, through mcp, imports it only for signed tokens).
LEFT_OUT = (
    "flashinfer-python",
    "tilelang",
    "quack-kernels",
    "humming-kernels",
    "tokenspeed-mla",
    "nvidia-cutlass-dsl",
    "torchcodec",
    "pynvvideocodec",
    "fastsafetensors",
    "nvidia-cudnn-frontend",
    "fastapi-cli",
    "fastapi-cloud-cli",
    "cryptography",
)

# Paths removed from the staging folder (relative, glob patterns): what vLLM 0.26 ships but does not load
# here. FA2 (~305 MB): Hopper uses the FA3 library; the Rust front end binary (`vllm-rs`, 43 MB, an
# optional server front end); CUTLASS headers for Blackwell attention; DeepGEMM (FP8 block GEMMs, found by
# has_deep_gemm() only when present); FlashMLA and QuTLASS kernels (MLA models, FP4), both loaded only if
# present; Swagger UI assets; Mistral's tekken vocabularies (33 MB) and pycountry's translations (22 MB);
# console scripts.
TRIM = (
    "vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so",
    "vllm/vllm-rs",
    "vllm/third_party/fmha_sm100",
    "vllm/third_party/deep_gemm",
    "vllm/_flashmla_C.abi3.so",
    "vllm/_qutlass_C.abi3.so",
    "pycountry/locales",
    "vllm/entrypoints/serve/instrumentator/static",
    "mistral_common/data/tekken_*.json",
    "**/__pycache__",
)

PLATFORMS = (
    "manylinux_2_35_x86_64",
    "manylinux_2_34_x86_64",
    "manylinux_2_31_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_26_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux_2_5_x86_64",
    "manylinux1_x86_64",
)


def pip_target_args() -> list[str]:
    args = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def requirements() -> list[str]:
    return [f"vllm=={VLLM_VERSION}", *(f"{name}=={version}" for name, version in DEPENDENCIES.items())]


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd[:12]), "..." if len(cmd) > 12 else "", flush=True)
    subprocess.run(cmd, check=True)


def download(wheels: Path) -> None:
    wheels.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *pip_target_args(), "-d", str(wheels),
         *requirements()])  # fmt: skip


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def stage(wheels: Path, site: Path) -> None:
    """Install the listed wheels (only those: the folder may hold others from an earlier list)."""
    wanted = {_normal(req.split("==")[0]): req.split("==")[1] for req in requirements()}
    files = []
    for path in sorted(wheels.glob("*.whl")):
        name, version = path.name.split("-")[:2]
        if wanted.get(_normal(name)) == version:
            files.append(str(path))
    if len(files) != len(wanted):
        raise SystemExit(f"{len(files)} wheels for {len(wanted)} requirements in {wheels}")
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--no-index",
         "--target", str(site), *pip_target_args(), *files])  # fmt: skip


def trim(site: Path) -> int:
    removed = 0
    for pattern in TRIM:
        for path in sorted(site.glob(pattern), reverse=True):
            removed += (
                sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                if path.is_dir()
                else (path.stat().st_size)
            )
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(site / "bin", ignore_errors=True)
    return removed


def pack(site: Path, out: Path, part_mib: int) -> list[Path]:
    name = f"vllm-{VLLM_VERSION}-py312.tar.xz"
    archive = out / name
    out.mkdir(parents=True, exist_ok=True)
    tar = subprocess.Popen(["tar", "-C", str(site), "--sort=name", "-cf", "-", "."], stdout=subprocess.PIPE)
    with archive.open("wb") as handle:
        subprocess.run(["xz", "-9", "-T0", "-c"], stdin=tar.stdout, stdout=handle, check=True)
    if tar.wait() != 0:
        raise SystemExit("tar failed")
    size = archive.stat().st_size
    parts, limit = [], part_mib * 2**20
    with archive.open("rb") as handle:
        index = 1
        while chunk := handle.read(limit):
            folder = out / f"part{index}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            part = folder / f"{name}.{index:02d}"
            part.write_bytes(chunk)
            parts.append(part)
            index += 1
    archive.unlink()
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.read_bytes())
    manifest = {
        "vllm": VLLM_VERSION,
        "bytes": size,
        "sha256": digest.hexdigest(),
        "parts": [str(p.relative_to(out)) for p in parts],
    }
    for part in parts:  # each part's folder travels alone; each says what the whole is
        (part.parent / "pack.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="git-ignored folder the device tool carries")
    parser.add_argument("--wheels", type=Path, default=Path(tempfile.gettempdir()) / "vllm-device-wheels")
    # 61 MiB a part: each call carries at most 64 MiB, the working tree (~1.3 MiB) and the run folder
    # (~0.4 MiB) included; the pack is ~120.4 MiB, so two parts.
    parser.add_argument("--part-mib", type=int, default=61)
    args = parser.parse_args(argv)
    download(args.wheels)
    with tempfile.TemporaryDirectory(prefix="vllm-site-") as tmp:
        site = Path(tmp) / "site"
        stage(args.wheels, site)
        removed = trim(site)
        kept = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
        print(f"staged {kept / 2**20:.0f} MiB after removing {removed / 2**20:.0f} MiB", flush=True)
        parts = pack(site, args.out, args.part_mib)
    for part in parts:
        print(f"{part}: {part.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    sys.exit(main())

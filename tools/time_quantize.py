"""Time the quantize role's script on the tiny lab model: median wall clock of 3 runs per method.

    .venv/bin/python tools/time_quantize.py [--runs 3] [--group-size 64]

Each run is a fresh process into a fresh output directory (no fingerprint to match), timed from start
to exit, so it includes importing torch and llm-compressor, loading the model, calibrating and saving:
what the role's quantize task costs. Prints a Markdown table for roles/quantize/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qwen_infra import lab_model

REPO = Path(__file__).resolve().parents[1]

SCRIPT = REPO / "roles" / "quantize" / "files" / "quantize_model.py"
SAMPLES = [
    "Qwen is a family of large language models.",
    "vLLM serves models through an OpenAI compatible API.",
    "GPU memory holds the weights and the paged key value cache.",
    "Ansible configures hosts; Pulumi provisions the cloud.",
]


def main() -> int:
    parse = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parse.add_argument("--runs", type=int, default=3)
    parse.add_argument("--group-size", type=int, default=64)
    args = parse.parse_args()
    from importlib.metadata import version  # noqa: PLC0415

    tool = version("llmcompressor")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lab_model.make_model(work / "qwen3-tiny")
        calibration = work / "calibration.jsonl"
        calibration.write_text("".join(json.dumps({"text": t * 4}) + "\n" for t in SAMPLES * 4))
        print(f"machine: {platform.node()}, {platform.machine()}, python {platform.python_version()}")
        print(f"llmcompressor {tool}, torch {version('torch')}, transformers {version('transformers')}\n")
        print("| method | runs (s) | median (s) |\n|---|---|---|")
        for method in ("awq", "gptq"):
            times = []
            for run in range(args.runs):
                argv = [sys.executable, str(SCRIPT), "run", "--source", str(work / "qwen3-tiny")]
                argv += ["--output", str(work / f"out-{method}-{run}"), "--method", method]
                argv += ["--group-size", str(args.group_size), "--calibration", str(calibration)]
                argv += ["--tool-version", tool]
                started = time.monotonic()
                subprocess.run(argv, check=True, capture_output=True)  # noqa: S603 - our own script
                times.append(time.monotonic() - started)
            runs = ", ".join(f"{t:.2f}" for t in times)
            print(f"| {method.upper()} W4A16 g{args.group_size} | {runs} | {statistics.median(times):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

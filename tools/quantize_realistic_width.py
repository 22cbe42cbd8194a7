"""Quantize a random-weight Qwen3 of Qwen3-8B's width (a few layers) with the quantize role's script, on a
GPU machine, and report wall-clock time, peak GPU memory and peak host memory per method.

    python3 tools/quantize_realistic_width.py --layers 4 --out /tmp/q8b      # prints one JSON line per method

Widths are Qwen3-8B's (hidden 4096, intermediate 12288, 32 heads / 8 KV heads of 128, vocab 151936); only
the layer count is cut so the run fits a lent machine's time. Weights come from qwen_infra.lab_model's
writer with this shape. GPU memory is sampled with nvidia-smi every 0.2 s while the script runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

from qwen_infra import lab_model

REPO = Path(__file__).resolve().parents[1]

SCRIPT = REPO / "roles" / "quantize" / "files" / "quantize_model.py"
QWEN3_8B_WIDTH = {
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
}


def gpu_memory_used_mib() -> int:
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],  # noqa: S607 - nvidia-smi from PATH, as on any GPU host
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return max(int(line) for line in out.split())


def run_with_peaks(command: list[str]) -> tuple[float, int, int, subprocess.CompletedProcess]:
    baseline, peak, done = gpu_memory_used_mib(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], gpu_memory_used_mib() - baseline)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our script
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    host_peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    return elapsed, peak[0], host_peak_mib, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tool-version", default="0.14.0.1")
    parser.add_argument("--num-samples", type=int, default=64)
    args = parser.parse_args()

    source = args.out / "source"
    lab_model.ARCH = {**lab_model.ARCH, **QWEN3_8B_WIDTH, "num_hidden_layers": args.layers}
    started = time.monotonic()
    lab_model.make_model(source)
    print(json.dumps({"made_source_s": round(time.monotonic() - started, 1), "layers": args.layers}))
    calibration = args.out / "calibration.txt"
    calibration.write_text("\n".join(lab_model.CORPUS * 16) + "\n")

    for method in ("awq", "gptq"):
        command = [
            sys.executable, str(SCRIPT), "run", "--source", str(source), "--output", str(args.out / method),
            "--method", method, "--group-size", "128", "--calibration", str(calibration),
            "--num-samples", str(args.num_samples), "--tool-version", args.tool_version,
        ]  # fmt: skip
        elapsed, gpu_peak, host_peak, result = run_with_peaks(command)
        print(
            json.dumps(
                {
                    "method": method,
                    "rc": result.returncode,
                    "wall_s": round(elapsed, 1),
                    "gpu_peak_mib_above_idle": gpu_peak,
                    "host_peak_rss_mib_any_child": host_peak,
                    "tail": result.stderr.strip().splitlines()[-3:] if result.returncode else [],
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

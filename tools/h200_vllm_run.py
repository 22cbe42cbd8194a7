"""Start vLLM on the lent H200 as the vllm role's unit does, and record what it reports.

Here (the controller; needs the qwen_infra package):

    .venv/bin/python tools/vllm_device_pack.py --out /work/main/.device-carry      # vLLM 0.26, 2 parts
    .venv/bin/python tools/h200_vllm_run.py prepare --carry /work/main/.device-carry

`prepare` renders every run of qwen_infra.sizing_cases.H200_RUNS through qwen_infra.server.full_command
(the code the unit's ExecStart comes from, via library/vram_check.py) into run/cases.json, and copies
this checkout's module_utils/, library/ and this script into run/repo, with ansible-core
wheels in ansible/. Then, through the device tool, in consecutive calls (the machine keeps ignored
files only while warm, 30 s), from the repository root, kind nvidia-h200, carrying the folders named:

  1. carry .device-carry/part1, .device-carry/run (~63 MiB), about 2.5 min with the machine's start:
       bash .device-carry/run/device.sh captures
  2. carry .device-carry/part2, .device-carry/run, about 9.5 min:
       bash .device-carry/run/device.sh --budget 555 unpack cases qwen3-8b-len8192 qwen3-32b-len8192-eager \
         qwen3-30b-a3b-len32768 qwen3-32b-len40960-util0.5-eager qwen3-8b-len40960-eager \
         qwen3-30b-a3b-len32768-eager
  3. carry .device-carry/run, .device-carry/ansible, about 8 min:
       bash .device-carry/run/device.sh --budget 560 bench qwen3-32b-len32768 cases \
         qwen3-32b-fp8kv-len32768 ansible

Each command's output goes to $OUT (the logs, records.json, ansible.json); prefix it with
`set -o pipefail;` and end it with `2>&1 | tee $OUT/driver.log`. About 20 minutes of device time in all
(tests/fixtures/gpu/h200/vllm-0.26/README.md has the calls as they were made). On the device this file
needs only the standard library: it writes the model folders' tokenizer.json itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Where the device side puts things (the carry folder travels inside the repository's working tree).
SITE = Path("/tmp/vllm-site")
MODELS = Path("/tmp/models")
DEVICE_PYTHON = "/opt/torch/.venv/bin/python3"  # KINDS.md: the image's python3 with torch 2.11
PORT = 8000
ANSIBLE_WHEELS = {"ansible-core": "2.19.14", "resolvelib": "1.2.1"}

# The environment every vLLM start gets there: no network, the FlashInfer sampler off (FlashInfer is
# not carried), the multicast-free NCCL settings the machines require, DEBUG logs for the profiler's
# breakdown (non-torch and activation memory are logged at DEBUG only).
VLLM_ENV = {
    "VLLM_USE_FLASHINFER_SAMPLER": "0",
    "VLLM_LOGGING_LEVEL": "DEBUG",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_CACHE_ROOT": "/tmp/vllm-cache",
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
    "PYTHONUNBUFFERED": "1",
}

# --- what vLLM reports: its start-up lines, as numbers ---------------------------------------------------

_NUMBER = r"(-?[\d,]+(?:\.\d+)?)"
STARTUP_LINES = {
    # vLLM 0.26's model runner V2 says "took X GiB and", V1 "took X GiB memory and".
    "weights_gib": rf"Model loading took {_NUMBER} GiB",
    "profile_non_kv_gib": rf"Total non KV cache memory: {_NUMBER}GiB",
    "activation_peak_gib": rf"torch peak memory increase: {_NUMBER}GiB",
    "non_torch_gib": rf"non-torch forward increase memory: {_NUMBER}GiB",
    "kv_cache_gib": rf"Available KV cache memory: {_NUMBER} GiB",
    "kv_cache_tokens": rf"GPU KV cache size: {_NUMBER} tokens",
    "max_concurrency": rf"Maximum concurrency for {_NUMBER} tokens per request: {_NUMBER}x",
    "cudagraph_capture_gib": rf"Graph capturing finished in {_NUMBER} secs, took {_NUMBER} GiB",
    "cudagraph_estimate_gib": (
        rf"CUDA graph pool memory: {_NUMBER} GiB \(actual\), {_NUMBER} GiB \(estimated\)"
    ),
    "refused": r"(To serve at least one request with the models?'s max seq len \([\d,]+\)"
    r"|No available memory for the cache blocks"
    r"|is less than desired GPU memory utilization)",
}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def parse_startup(text: str) -> dict:
    """The figures one vLLM start-up logged (the first of each line; None when absent)."""
    import re  # noqa: PLC0415 - keeps the module's import block the device's minimum

    found: dict = {}
    for key, pattern in STARTUP_LINES.items():
        match = re.search(pattern, text)
        if match is None:
            found[key] = None
        elif key == "refused":
            found[key] = match.group(1)
        elif key == "max_concurrency":
            found["max_concurrency_len"] = int(_number(match.group(1)))
            found[key] = _number(match.group(2))
        elif key == "cudagraph_capture_gib":
            found[key] = _number(match.group(2))
        elif key == "cudagraph_estimate_gib":
            found[key] = _number(match.group(2))
            found["cudagraph_actual_gib"] = _number(match.group(1))
        else:
            found[key] = _number(match.group(1))
    if found["kv_cache_tokens"] is not None:
        found["kv_cache_tokens"] = int(found["kv_cache_tokens"])
    return found


def startup_lines(text: str) -> list[str]:
    """The lines parse_startup reads, as logged: what the fixtures keep of each start."""
    import re  # noqa: PLC0415

    patterns = [re.compile(p) for p in STARTUP_LINES.values()]
    return [line for line in text.splitlines() if any(p.search(line) for p in patterns)]


# --- model folders: the real config.json and a tokenizer padded to the real vocabulary ----------------

# Fields of the official config.json files that the sizing catalog does not keep (it keeps shapes).
QWEN3_DENSE_EXTRA = {
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": None,
    "use_cache": True,
    "use_sliding_window": False,
}
QWEN3_MOE_EXTRA = {
    **QWEN3_DENSE_EXTRA,
    "architectures": ["Qwen3MoeForCausalLM"],
    "norm_topk_prob": True,
    "output_router_logits": False,
    "router_aux_loss_coef": 0.001,
}
# Qwen3's special tokens at their real ids (151643..151668); vocab_size 151936 pads beyond them.
SPECIAL_TOKENS = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"}
FIRST_SPECIAL, LAST_SPECIAL = 151643, 151668
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def byte_level_alphabet() -> list[str]:
    """GPT-2's byte-to-unicode table (what a ByteLevel pre-tokenizer emits), in byte order."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    )
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[byte] = chr(byte)
        else:
            chars[byte] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def padded_tokenizer(vocab_size: int) -> dict:
    """A byte-level BPE tokenizer.json with exactly `vocab_size` ids, Qwen's special tokens at their real
    ids: every id a dummy-weight model can sample decodes (an id past the tokenizer breaks the
    detokenizer), and any text encodes (one token per byte: there are no merges)."""
    vocab = {char: i for i, char in enumerate(byte_level_alphabet())}
    added = []
    for token_id in range(len(vocab), vocab_size):
        if FIRST_SPECIAL <= token_id <= LAST_SPECIAL:
            content = SPECIAL_TOKENS.get(token_id, f"<|reserved_special_{token_id}|>")
            added.append(
                {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": False, "special": True}
            )  # fmt: skip
        else:
            content = f"p{token_id:x}"
        vocab[content] = token_id
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [],
        },
    }  # fmt: skip


def model_config(catalog: dict) -> dict:
    config = {key: value for key, value in catalog.items() if key != "source"}
    extra = QWEN3_MOE_EXTRA if config.get("num_experts") else QWEN3_DENSE_EXTRA
    return {**extra, **config, "max_window_layers": config["num_hidden_layers"]}


def write_model_folder(folder: Path, config: dict) -> None:
    """config.json, tokenizer.json, tokenizer_config.json and generation_config.json (no weights:
    the runs use --load-format dummy)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "tokenizer.json").write_text(json.dumps(padded_tokenizer(config["vocab_size"])))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": config["max_position_embeddings"],
                "bos_token": None,
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "unk_token": None,
                "chat_template": CHAT_TEMPLATE,
                "clean_up_tokenization_spaces": False,
            },
            indent=2,
        )
        + "\n"
    )
    (folder / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 151643, "eos_token_id": [151645, 151643], "pad_token_id": 151643}) + "\n"
    )


# --- here: render the cases and fill the carry folder ---------------------------------------------------


def render_cases(python: str = DEVICE_PYTHON) -> list[dict]:
    """Every H200 run with the argv our unit would run (qwen_infra.server.full_command) and the config
    its model folder gets."""
    sys.path.insert(0, str(REPO / "module_utils"))  # this checkout's package, not an installed one
    from qwen_infra import server  # noqa: PLC0415 - only here; the device side runs without it
    from qwen_infra.sizing.architecture import catalog_config  # noqa: PLC0415
    from qwen_infra.sizing_cases import H200_RUNS, h200_server  # noqa: PLC0415

    cases = []
    for run in H200_RUNS:
        described = h200_server(run)
        settings = {
            name: getattr(described, name)
            for name in ("model", "served_model_name", "host", "port", *run.settings)
        }
        cases.append(
            {
                "key": run.key,
                "model": run.model,
                "model_dir": described.model,
                "expect_fits": run.expect_fits,
                "settings": {k: v for k, v in settings.items() if k != "extra_args"},
                "argv": server.full_command(described, python),
                "config": model_config(catalog_config(run.model)),
            }
        )
    return cases


def prepare(carry: Path) -> None:
    run = carry / "run"
    shutil.rmtree(run, ignore_errors=True)
    repo = run / "repo"
    for name in ("module_utils", "library"):
        shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(Path(__file__), run / "h200_vllm_run.py")
    (run / "device.sh").write_text(
        "#!/bin/bash\n# Runs tools/h200_vllm_run.py's device commands with the device's python3.\n"
        'here=$(cd "$(dirname "$0")" && pwd)\n'
        'exec env PYTHONUNBUFFERED=1 python3 "$here/h200_vllm_run.py" device \\\n'
        '  --carry "$(dirname "$here")" "$@"\n'
    )
    (run / "cases.json").write_text(json.dumps(render_cases(), indent=1) + "\n")
    wheels = carry / "ansible"
    if not all(any(wheels.glob(f"{n.replace('-', '_')}-{v}-*.whl")) for n, v in ANSIBLE_WHEELS.items()):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "-d", str(wheels),
             *(f"{n}=={v}" for n, v in ANSIBLE_WHEELS.items())],
            check=True,
        )  # fmt: skip
    size = sum(f.stat().st_size for f in run.rglob("*") if f.is_file())
    print(f"{run}: {len(render_cases())} cases, {size / 2**20:.1f} MiB")


# --- there: the device commands -----------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def sh(command: str, timeout: int = 60) -> str:
    done = subprocess.run(  # noqa: S602 - fixed commands of this file
        command,
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout + done.stderr


def gpu_memory() -> dict:
    """nvidia-smi's view: the card's used/total MiB and each compute process's MiB."""
    total = sh(
        "nvidia-smi --query-gpu=memory.used,memory.total,memory.reserved --format=csv,noheader,nounits"
    )
    apps = sh("nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits")
    used, total_mib, reserved = (int(x) for x in total.strip().splitlines()[0].split(","))
    processes = [
        {"pid": int(p), "used_mib": int(m)}
        for p, m in (line.split(",") for line in apps.strip().splitlines() if "," in line)
    ]
    return {"used_mib": used, "total_mib": total_mib, "reserved_mib": reserved, "processes": processes}


def torch_total_bytes() -> int:
    out = sh(f"{sys.executable} -c 'import torch; print(torch.cuda.mem_get_info()[1])'", timeout=120)
    return int(out.strip().splitlines()[-1])


def get(url: str, timeout: float = 2) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status
    except OSError:
        return 0


def post_json(url: str, body: dict, timeout: float = 120) -> dict:
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


def stop(process: subprocess.Popen, grace: int = 30) -> None:
    """SIGTERM the server's process group (API server and engine core), SIGKILL what remains."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            time.sleep(2)
        except subprocess.TimeoutExpired:
            continue
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return


def wait_gpu_free(limit: int = 60) -> None:
    deadline = time.time() + limit
    while time.time() < deadline and gpu_memory()["used_mib"] > 2048:
        time.sleep(2)


def vllm_env() -> dict:
    env = {**os.environ, **VLLM_ENV}
    env["PYTHONPATH"] = str(SITE) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def start(case: dict, log_path: Path) -> subprocess.Popen:
    argv = list(case["argv"])
    if not Path(argv[0]).exists():
        argv[0] = sys.executable
    with log_path.open("w") as handle:
        handle.write("# argv: " + json.dumps(argv) + "\n")
        handle.flush()
        return subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, env=vllm_env(), start_new_session=True
        )


def wait_ready(process: subprocess.Popen, limit: float) -> str:
    deadline = time.time() + limit
    while time.time() < deadline:
        if process.poll() is not None:
            return f"exited {process.returncode}"
        if get(f"http://127.0.0.1:{PORT}/health") == 200:
            return "healthy"
        time.sleep(1)
    return "timeout"


def run_case(case: dict, out: Path, limit: float, serve=None) -> dict:
    """Start one case, wait for health (or the refusal), sample GPU memory while serving, stop it."""
    log(f"case {case['key']}: {' '.join(case['argv'][1:])}")
    wait_gpu_free()
    record: dict = {"key": case["key"], "before": gpu_memory()}
    began = time.time()
    process = start(case, out / f"{case['key']}.log")
    try:
        record["state"] = wait_ready(process, limit)
        record["ready_s"] = round(time.time() - began, 1)
        if record["state"] == "healthy":
            record["serving"] = gpu_memory()
            answer = post_json(
                f"http://127.0.0.1:{PORT}/v1/completions",
                {"model": case["settings"]["served_model_name"], "prompt": "Hello, H200", "max_tokens": 64,
                 "ignore_eos": True, "temperature": 0},
            )  # fmt: skip
            record["completion_tokens"] = answer["usage"]["completion_tokens"]
            record["after_request"] = gpu_memory()
            if serve:
                record["served"] = serve(case, out)
                record["after_serve"] = gpu_memory()
        elif record["state"] == "timeout":
            log(f"case {case['key']}: no health after {limit:.0f} s")
    finally:
        stop(process)
    record["total_s"] = round(time.time() - began, 1)
    log(
        f"case {case['key']}: {record['state']} after {record['ready_s']} s; "
        + summary(out / f"{case['key']}.log")
    )
    return record


def summary(log_path: Path) -> str:
    """The start-up lines that matter, for the call's output tail."""
    keys = ("Model loading took", "Available KV cache memory", "GPU KV cache size", "Maximum concurrency",
            "Graph capturing finished", "Memory profiling takes", "ValueError", "Error")  # fmt: skip
    lines = [line.strip()[-220:] for line in log_path.read_text(errors="replace").splitlines()]
    return " | ".join(line for line in lines if any(k in line for k in keys))[:1500]


def load_cases(carry: Path) -> dict:
    return {case["key"]: case for case in json.loads((carry / "run" / "cases.json").read_text())}


def ensure_models(cases: dict) -> None:
    for case in cases.values():
        folder = Path(case["model_dir"])
        if not (folder / "tokenizer.json").exists():
            write_model_folder(folder, case["config"])


def captures(carry: Path, out: Path) -> None:
    """What only the real machine shows: device nodes, nvidia-smi, torch's view of the memory."""
    (out / "proc-devices.txt").write_text(Path("/proc/devices").read_text())
    (out / "dev-nvidia.txt").write_text(sh("ls -l /dev/nvidia* /dev/nvidia-caps 2>&1"))
    (out / "nvidia-smi-q.xml").write_text(sh("nvidia-smi -q -x"))
    host = [
        sh("nvidia-smi --query-gpu=index,name,memory.total,memory.reserved,memory.used,memory.free,"
           "driver_version --format=csv"),
        sh("cat /proc/driver/nvidia/version; uname -r; grep PRETTY /etc/os-release"),
        sh(f"{sys.executable} -V; {sys.executable} -c 'import torch, transformers, tokenizers; "
           "print(torch.__version__, transformers.__version__, tokenizers.__version__); "
           "print(\"mem_get_info\", torch.cuda.mem_get_info())'", timeout=120),
    ]  # fmt: skip
    (out / "host.txt").write_text("\n".join(host))
    log("captured: " + " ".join(sorted(p.name for p in out.iterdir())))
    print(host[0], host[2], sep="\n")


def unpack(carry: Path) -> None:
    """Join the parts the earlier calls left (checked against the pack's sha256) and untar them."""
    manifests = sorted(carry.glob("part*/pack.json"))
    if not manifests:
        raise SystemExit("no part*/pack.json here: carry the parts (tools/vllm_device_pack.py)")
    pack = json.loads(manifests[0].read_text())
    parts = [carry / name for name in pack["parts"]]
    missing = [str(p) for p in parts if not p.exists()]
    if missing:
        raise SystemExit(f"missing {missing}: the machine went cold between calls; send every part again")
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.read_bytes())
    if digest.hexdigest() != pack["sha256"]:
        raise SystemExit("the parts do not add up to the pack (sha256 differs): pack and send again")
    log(f"unpacking {[p.name for p in parts]}")
    SITE.mkdir(parents=True, exist_ok=True)
    names = " ".join(str(p) for p in parts)
    output = sh(f"set -o pipefail; cat {names} | xz -dc -T0 | tar -x -C {SITE}", timeout=300)
    if output.strip():
        raise SystemExit(output)
    smoke = sh(
        f"cd /tmp && PYTHONPATH={SITE} {sys.executable} -c 'import vllm, vllm.entrypoints.openai.api_server, "
        'vllm._C_stable_libtorch, vllm.vllm_flash_attn; print("vllm", vllm.__version__)\'',
        timeout=240,
    )
    log("smoke: " + smoke.strip()[-2000:])
    if not smoke.strip().endswith(f"vllm {pack['vllm']}"):
        raise SystemExit("vLLM does not import: fix the pack (tools/vllm_device_pack.py) before any start")


def ansible_checks(carry: Path, out: Path, cases: dict) -> None:
    """gpu_facts and vram_check (-c local) on this GPU, for every case, with the argv vram_check builds
    compared with the one rendered on the controller."""
    target = Path("/tmp/alib")
    wheels = " ".join(str(p) for p in (carry / "ansible").glob("*.whl"))
    print(
        sh(f"{sys.executable} -m pip install -q --no-index --no-deps --target {target} {wheels}", 300)[-500:]
    )
    repo = carry / "run" / "repo"
    config = Path("/tmp/ansible.cfg")  # the repository's names the lab's vault file, not carried
    config.write_text(f"[defaults]\nlibrary = {repo / 'library'}\nmodule_utils = {repo / 'module_utils'}\n")
    env = {**os.environ, "PYTHONPATH": str(target), "ANSIBLE_CONFIG": str(config),
           "ANSIBLE_LIBRARY": str(repo / "library"), "ANSIBLE_MODULE_UTILS": str(repo / "module_utils"),
           "ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "NO_COLOR": "1",
           "ANSIBLE_LOCALHOST_WARNING": "0"}  # fmt: skip
    inventory = Path("/tmp/inv")
    inventory.write_text(
        f"[gpu_hosts]\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    ansible = [sys.executable, str(target / "bin" / "ansible"), "gpu_hosts", "-i", str(inventory)]
    results = []

    def module(name: str, args: dict) -> dict:
        module_args = ["-a", json.dumps(args)] if args else []
        done = subprocess.run([*ansible, "-m", name, *module_args], capture_output=True, text=True, env=env,
                              check=False,
                              timeout=180)  # fmt: skip
        text = done.stdout  # "localhost | SUCCESS => {json}" (ansible-core alone has no json callback)
        try:
            return json.loads(text[text.index(" => {") + 4 :])
        except ValueError:
            return {"unparsed": text[-3000:], "stderr": done.stderr[-3000:]}

    results.append({"module": "gpu_facts", "result": module("gpu_facts", {})})
    # One per model and setting that changes the verdict (the eager and second-length twins add nothing).
    for case in (c for key, c in cases.items() if key in ANSIBLE_CASES):
        args = {
            "server": {**case["settings"], "extra_args": ["--load-format", "dummy"]},
            "python": case["argv"][0],
        }
        result = module("vram_check", args)
        result["argv_matches_rendered"] = result.get("argv") == case["argv"]
        results.append({"module": "vram_check", "case": case["key"], "result": result})
        log(
            f"vram_check {case['key']}: fits={result.get('fits')} argv same={result['argv_matches_rendered']}"
        )
    (out / "ansible.json").write_text(json.dumps(results, indent=1) + "\n")


ANSIBLE_CASES = (
    "qwen3-8b-len8192",
    "qwen3-32b-len32768",
    "qwen3-30b-a3b-len32768",
    "qwen3-32b-fp8kv-len32768",
    "qwen3-32b-len40960-util0.5-eager",
)
BENCH_CONCURRENCY = (1, 8, 32, 128)


def bench(case: dict, out: Path) -> list[dict]:
    """`vllm bench serve` at fixed lengths (random prompts of 1024 tokens, 256 output tokens, EOS
    ignored: dummy weights write arbitrary text) at a few concurrencies."""
    results = []
    for concurrency in BENCH_CONCURRENCY:
        prompts = max(4, 2 * concurrency) if concurrency > 1 else 4
        name = f"bench-c{concurrency}.json"
        argv = [sys.executable, "-m", "vllm.entrypoints.cli.main", "bench", "serve", "--backend", "vllm",
                "--base-url", f"http://127.0.0.1:{PORT}", "--model", case["settings"]["served_model_name"],
                "--tokenizer", case["model_dir"], "--dataset-name", "random", "--random-input-len", "1024",
                "--random-output-len", "256", "--ignore-eos", "--num-prompts", str(prompts),
                "--max-concurrency", str(concurrency), "--seed", "0", "--percentile-metrics", "ttft,tpot,itl",
                "--metric-percentiles", "50,90,99", "--save-result", "--result-dir", "/tmp/bench",
                "--result-filename", name]  # fmt: skip
        log(f"bench concurrency {concurrency}, {prompts} prompts")
        env = {**vllm_env(), "VLLM_LOGGING_LEVEL": "INFO"}
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
        print(done.stdout[-1800:], done.stderr[-600:] if done.returncode else "", flush=True)
        path = Path("/tmp/bench") / name
        result = json.loads(path.read_text()) if path.exists() else {"failed": done.returncode}
        result.update({"concurrency": concurrency, "num_prompts": prompts, "memory": gpu_memory()})
        for key in ("itls", "ttfts", "input_lens", "output_lens", "generated_texts", "errors", "start_times"):
            result.pop(key, None)
        results.append(result)
    return results


def device(args) -> int:
    carry = args.carry.resolve()
    out = Path(os.environ.get("OUT", "/tmp/out"))
    out.mkdir(parents=True, exist_ok=True)
    cases = load_cases(carry)
    deadline = time.time() + args.budget
    steps, records = list(args.steps), []
    if steps and steps[0] == "captures":
        captures(carry, out)
        steps.pop(0)
    if steps and steps[0] == "unpack":
        unpack(carry)
        steps.pop(0)
    ensure_models(cases)
    while steps:
        step = steps.pop(0)
        if step == "ansible":
            ansible_checks(carry, out, cases)
        elif step == "cases":
            while steps and steps[0] in cases:
                key = steps.pop(0)
                left = deadline - time.time()
                # A start that cannot finish wastes the lease: eager starts took about a minute, starts
                # that compile and capture CUDA graphs up to two (tests/fixtures/gpu/h200/vllm-0.26).
                needed = 75 if cases[key]["settings"].get("enforce_eager") else 150
                if left < needed:
                    log(f"skipping {key}: {left:.0f} s left, a start needs about {needed} s")
                    continue
                records.append(run_case(cases[key], out, min(300, left - 20)))
                (out / "records.json").write_text(json.dumps(records, indent=1) + "\n")
        elif step == "bench":
            key = steps.pop(0)
            records.append(run_case(cases[key], out, min(420, deadline - time.time() - 200), serve=bench))
            (out / "records.json").write_text(json.dumps(records, indent=1) + "\n")
        else:
            raise SystemExit(f"unknown step {step!r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="here: fill the carry folder")
    prep.add_argument("--carry", type=Path, required=True)
    dev = commands.add_parser("device", help="there: captures, unpack, cases KEY..., ansible, bench KEY")
    dev.add_argument("--carry", type=Path, required=True)
    dev.add_argument("--budget", type=float, default=560, help="seconds this call may take")
    dev.add_argument("steps", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.carry)
        return 0
    return device(args)


if __name__ == "__main__":
    sys.exit(main())

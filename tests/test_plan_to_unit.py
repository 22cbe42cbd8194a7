"""Every plan the planner makes is a plan the hosts accept and run: for each example stack, the
inventory generated from its (mocked) `pulumi up` outputs passes the vllm role's server check on hosts
with that stack's GPUs, and the unit the role renders runs exactly the command the planner printed.

Mocked, because they cannot exist here: AWS (Pulumi's mocks) and the GPUs (a stand-in nvidia-smi
printing a real H100/H200 capture once per GPU; types without a capture are sized by
vllm_vram_check_gpu_memory_bytes). Everything else is real: the inventory script, ansible-playbook, the
role's tasks and template, the module.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import inventory
import pytest
import yaml
from pulumi_harness import EXAMPLE_STACKS, run_example
from qwen_infra.catalogs import aws_instances
from qwen_infra.catalogs.gpus import GPUS
from qwen_infra.catalogs.models import MODELS
from qwen_infra.server import ENTRY_POINT, MULTI_NODE_ENTRY_POINT

from tests.paths import REPO

PLAYBOOK = REPO / "tests" / "playbooks" / "plan_to_unit.yml"
CAPTURES = {"H100-80GB": "h100-80gb-hbm3", "H200-141GB": "h200"}
PYTHON = "/opt/vllm/venv/bin/python"  # the role's default vllm_venv_dir


def fake_nvidia_smi(directory: Path, gpu: str, count: int) -> None:
    """An nvidia-smi that prints a real capture of this GPU with its <gpu> element `count` times."""
    xml = (REPO / "tests" / "fixtures" / "gpu" / CAPTURES[gpu] / "nvidia-smi-q.xml").read_text()
    element = re.search(r"<gpu id=.*?</gpu>", xml, flags=re.S).group(0)
    copies = "\n".join(element.replace('id="', f'id="{index}', 1) for index in range(count))
    xml = xml.replace(element, copies).replace(
        re.search(r"<attached_gpus>.*?</attached_gpus>", xml).group(0),
        f"<attached_gpus>{count}</attached_gpus>",
    )
    (directory / "nvidia-smi-q.xml").write_text(xml)
    script = directory / "nvidia-smi"
    script.write_text(f'#!/bin/sh\ncat "{directory / "nvidia-smi-q.xml"}"\n')
    script.chmod(0o755)


def model_config(model: str) -> dict:
    """The model's config.json as the catalog holds it (a quantized variant carries its quantization)."""
    from qwen_infra.sizing.architecture import catalog_config  # noqa: PLC0415

    return catalog_config(model)


def unit_argv(unit: str) -> list[str]:
    """ExecStart's words as systemd reads them (the template escapes %, $, \\ and quotes once)."""
    lines = unit.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ExecStart="))
    text = ""
    for line in lines[start:]:
        text += line.removeprefix("ExecStart=").rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            break
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(text)]


@pytest.fixture(scope="module")
def plays(tmp_path_factory):
    """stack -> (outputs, {host: (unit argv, server check verdict)}), one ansible-playbook per stack."""
    results = {}
    for stack in EXAMPLE_STACKS:
        work = tmp_path_factory.mktemp(stack)
        outputs = run_example(stack).outputs
        hardware = outputs["hardware"]
        gpu = aws_instances.INSTANCES[hardware["instance_type"]]["gpu"]
        directory = work / "inventory"
        shutil.copytree(REPO / "inventories" / "prod" / "group_vars", directory / "group_vars")
        (directory / "hosts.yml").write_text(inventory.render(outputs))
        # The model where the inventory says it lives, under this test's directory: its revision's own
        # directory, which the unit reaches through the link at model_dir.
        cache = work / "models"
        model_dir = cache / outputs["serving"]["model_name"]
        revision = cache / f"{model_dir.name}@test"
        revision.mkdir(parents=True)
        (revision / "config.json").write_text(json.dumps(model_config(outputs["serving"]["model"])))
        bin_dir = work / "bin"
        bin_dir.mkdir()
        # The fabric the nccl_fabric role records on these hosts: EFA where the type has it.
        fabric = "efa" if aws_instances.INSTANCES[hardware["instance_type"]]["efa_interfaces"] else "none"
        extra = [
            f"qwen_model_cache_dir={cache}", "qwen_model_revision=test", f"plan_to_unit_out={work}",
            "vllm_api_key=" + "k" * 32, f"plan_to_unit_fabric={fabric}",
        ]  # fmt: skip
        if gpu in CAPTURES:
            fake_nvidia_smi(bin_dir, gpu, hardware["gpus_per_node"])
        else:
            extra.append(f"vllm_vram_check_gpu_memory_bytes={GPUS[gpu]['usable_bytes']}")
        done = subprocess.run(
            [
                Path(sys.executable).parent / "ansible-playbook", PLAYBOOK, "-i", directory,
                "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}",
                *[word for pair in extra for word in ("-e", pair)],
            ],
            cwd=REPO, capture_output=True, text=True, check=False,
            env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                 "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        )  # fmt: skip
        assert done.returncode == 0, f"{stack}: the hosts refused the plan\n{done.stdout}\n{done.stderr}"
        hosts = {
            path.stem: (unit_argv(path.read_text()), json.loads((work / f"{path.stem}.json").read_text()))
            for path in work.glob("*.service")
        }
        results[stack] = (outputs, model_dir, hosts)
        rendered[stack] = {
            path.stem: (path.read_text(), (work / f"{path.stem}.env").read_text())
            for path in work.glob("*.service")
        }
        ranks[stack] = node_ranks(directory / "hosts.yml")
    return results


rendered: dict = {}  # stack -> {host: (unit text, environment file text)}, filled by `plays`
ranks: dict = {}  # stack -> {host: vllm_node_rank}, as the generated inventory says


def node_ranks(hosts_file: Path) -> dict[str, int]:
    serving = yaml.safe_load(hosts_file.read_text())["all"]["children"]["vllm_servers"]["children"]
    return {
        host: variables["vllm_node_rank"]
        for group in serving.values()
        for host, variables in group["hosts"].items()
    }


def planned_argv(outputs, model_dir, rank):
    """The whole argv the planner says node `rank` runs; the planner names the model by the stack's cache
    directory, the test's hosts keep it elsewhere."""
    planned = list(outputs["serving"]["node_commands"][rank])
    entry = MULTI_NODE_ENTRY_POINT if len(outputs["serving"]["node_commands"]) > 1 else ENTRY_POINT
    planned[planned.index("--model") + 1] = str(model_dir)
    return [PYTHON, *entry, *planned]


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_the_unit_runs_exactly_the_planned_command(plays, stack):
    outputs, model_dir, hosts = plays[stack]
    assert len(hosts) == outputs["hardware"]["nodes"]
    assert sorted(ranks[stack].values()) == list(range(len(hosts)))
    for host, (argv, _) in hosts.items():
        assert argv == planned_argv(outputs, model_dir, ranks[stack][host]), host


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_the_preflight_sized_the_plan_on_the_stacks_gpus_and_it_fits(plays, stack):
    outputs, _, hosts = plays[stack]
    for host, (_, verdict) in hosts.items():
        assert verdict["checked"] and verdict["shape_checked"], host
        assert verdict["fits"] is True, verdict["msg"]
        assert verdict["max_concurrency"] >= outputs["hardware"]["max_concurrency"] * 0.99


def test_the_examples_cover_expert_parallel_and_several_nodes(plays):
    layouts = {stack: outputs["serving"] for stack, (outputs, _, _) in plays.items()}
    assert any(serving["enable_expert_parallel"] for serving in layouts.values())
    assert any(serving["nodes"] > 1 for serving in layouts.values())
    assert set(MODELS) >= {
        serving["model"].removesuffix("-FP8").removesuffix("-AWQ") for serving in layouts.values()
    }


# --- the multi-node example: Qwen3-235B-A22B in bf16 over two p4d.24xlarge ----------------------------

MULTI_NODE_STACK = "qwen3-235b-a100"


def test_the_multi_node_stack_runs_one_server_over_both_hosts_natively(plays):
    outputs, model_dir, hosts = plays[MULTI_NODE_STACK]
    by_rank = {ranks[MULTI_NODE_STACK][host]: host for host in hosts}
    head_ip = outputs["hosts"][0]["private_ip"]
    head, worker = (hosts[by_rank[rank]][0] for rank in (0, 1))

    # The exact command on every node (the model where this test keeps it); each listens on its own
    # private address (vllm_host), and only the head serves.
    def command(rank):
        return [
            "--model", str(model_dir), "--served-model-name", "Qwen3-235B-A22B",
            "--host", outputs["hosts"][rank]["private_ip"], "--port", "8000",
            "--tensor-parallel-size", "8", "--pipeline-parallel-size", "2", "--max-model-len", "32768",
            "--gpu-memory-utilization", "0.92",
            "--nnodes", "2", "--node-rank", str(rank), "--master-addr", head_ip, "--master-port", "29501",
        ]  # fmt: skip

    assert head == [PYTHON, "-m", "qwen_vllm_node", *command(0)]
    assert worker == [PYTHON, "-m", "qwen_vllm_node", *command(1), "--headless"]
    assert all("ray" not in word for word in head + worker)


def test_each_node_sized_its_own_stage_with_the_planners_verdict(plays):
    outputs, _, hosts = plays[MULTI_NODE_STACK]
    for host, (_, verdict) in hosts.items():
        rank = ranks[MULTI_NODE_STACK][host]
        assert verdict["fits"] is True and verdict["checked"], verdict["msg"]
        assert verdict["node"]["stages"] == [rank] and verdict["node"]["gpus"] == 8
        assert f"node {rank} holds pipeline stage(s) {rank}" in verdict["msg"]
        # The group's capacity: at least the planner's. Not equal: A100 hosts have no nvidia-smi capture
        # here, so they are sized by vllm_vram_check_gpu_memory_bytes, a GPU of that memory whose NVLink
        # (and so vLLM's all-reduce buffers) the check cannot know; the planner's catalog A100 has it.
        planned = outputs["hardware"]["kv_cache_tokens"]
        assert planned <= verdict["kv_cache_tokens"] <= 1.15 * planned


def test_each_node_advertises_its_own_address_and_lets_efa_through(plays):
    outputs, _, _ = plays[MULTI_NODE_STACK]
    private = {host["name"]: host["private_ip"] for host in outputs["hosts"]}
    for host, (unit, environment) in rendered[MULTI_NODE_STACK].items():
        assert f'VLLM_HOST_IP="{private[host]}"' in environment.splitlines(), host
        devices = [line for line in unit.splitlines() if line.startswith("DeviceAllow=")]
        # EFA's verbs devices (every /proc/devices "infiniband_verbs" major), no RDMA-CM: EFA does not use it
        assert "DeviceAllow=char-infiniband_verbs rw" in devices
        assert not any("rdma_cm" in line for line in devices)
        assert "LimitMEMLOCK=infinity" in unit.splitlines()

"""`python infra/plan.py` prints the choice without Pulumi, and docs/pulumi.md says what it prints:
the hardware and price of every example stack, and every configuration key."""

import json
import subprocess
import sys

import config
import plan
import pytest
from pulumi_harness import EXAMPLE_STACKS, INFRA

DOCS = (INFRA.parent / "docs" / "pulumi.md").read_text()


def run_plan(*args):
    return subprocess.run(
        [sys.executable, INFRA / "plan.py", *args], capture_output=True, text=True, check=False
    )


def test_plan_prints_the_choice_as_a_table_and_as_json():
    table = run_plan("--stack", "qwen3-32b-awq")
    assert table.returncode == 0, table.stderr
    assert "hardware   1 x g6e.12xlarge (4 x L40S each)" in table.stdout
    assert "$10.49/h on demand" in table.stdout
    document = json.loads(run_plan("--stack", "qwen3-235b-fp8", "--json").stdout)
    assert (document["instance_type"], document["nodes"], document["network_interfaces_per_node"]) == (
        "p5.48xlarge",
        1,
        33,
    )
    assert "--enable-expert-parallel" in document["command"]


def test_plan_exit_status(tmp_path, monkeypatch, capsys):
    assert plan.main(["--stack", "no-such-stack"]) == plan.BAD_CONFIG
    assert "stacks here: qwen3-235b-a100, qwen3-235b-fp8" in capsys.readouterr().err
    (tmp_path / "Pulumi.huge.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  qwen-infra:model: Qwen/Qwen3-235B-A22B\n"
        "  qwen-infra:concurrency: 100000\n  qwen-infra:availabilityZone: us-east-1a\n"
        "  qwen-infra:sshKeyName: k\n  qwen-infra:instanceTypes: [g5.xlarge]\n"
    )
    monkeypatch.setattr(plan, "INFRA", tmp_path)
    assert plan.main(["--stack", "huge"]) == plan.NOTHING_FITS
    assert "plan: nothing fits: Qwen/Qwen3-235B-A22B (bf16)" in capsys.readouterr().err


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_docs_state_the_hardware_and_price_plan_prints(stack):
    config = plan.load_stack(stack)
    chosen = plan.describe(stack, config, plan.select(config))
    (row,) = [line for line in DOCS.splitlines() if line.startswith(f"| `{stack}` |")]
    gpus = f"{chosen['gpus_per_node']} x {chosen['gpu']}"
    assert f"{chosen['nodes']} x {chosen['instance_type']} ({gpus})" in row
    assert f"${chosen['usd_per_hour']:,.2f} ({chosen['price_date']})" in row
    assert f"TP {chosen['tensor_parallel_size']}" in row


def test_docs_list_every_configuration_key():
    for key in [*config.KEYS, "aws:region"]:
        assert f"| `{key}` |" in DOCS, key

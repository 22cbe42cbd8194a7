"""Print the hardware a stack would get, without Pulumi or an AWS account.

    python infra/plan.py --stack qwen3-32b-awq          the choice, its price and the vLLM arguments
    python infra/plan.py --stack qwen3-32b-awq --json   the same as JSON

It reads infra/Pulumi.<stack>.yaml and runs the same loader and selection as `pulumi up`; only the
availability zone's offerings and the AWS catalog cross-check are left to `pulumi preview`.
Exit status: 0 chosen, 1 nothing fits, 2 the configuration is unusable.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import config as stack_config
import yaml
from efa_layout import interface_layout
from handoff import served
from hardware import HardwareError, Selection, select
from qwen_infra.server import full_command, node_server

INFRA = Path(__file__).resolve().parent

CHOSEN, NOTHING_FITS, BAD_CONFIG = 0, 1, 2


def stack_file(stack: str) -> Path:
    return INFRA / f"Pulumi.{stack}.yaml"


def load_stack(stack: str) -> stack_config.StackConfig:
    path = stack_file(stack)
    if not path.is_file():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in INFRA.glob("Pulumi.*.yaml")
        )
        raise stack_config.ConfigError(f"{path} does not exist; stacks here: {', '.join(known)}")
    document = yaml.safe_load(path.read_text()) or {}
    return stack_config.load(document.get("config") or {})


def describe(stack: str, config: stack_config.StackConfig, selection: Selection) -> dict[str, Any]:
    summary = selection.summary()
    server = served(config, selection)
    layout = interface_layout(selection.instance)
    return {
        "stack": stack,
        "model": selection.model,
        **summary,
        "network_interfaces_per_node": len(layout),
        # The head's (every host's, on one host); across nodes the workers' differ only in their rank
        # and --headless, and the head's address is known only after `pulumi up`.
        "command": full_command(server, "python3"),
        "worker_command": full_command(node_server(server, 1), "python3") if selection.nodes > 1 else None,
    }


def format_table(plan: dict[str, Any]) -> str:
    price = plan["usd_per_hour"]
    price_text = (
        f"${price:,.2f}/h on demand ({plan['nodes']} x ${plan['usd_per_hour_per_node']:,.2f}, "
        f"{plan['price_region']}, {plan['price_date']}, {plan['price_status']})"
        if price is not None
        else f"no published on-demand price ({plan['price_status']})"
    )
    rows = [
        ("stack", plan["stack"]),
        ("model", plan["model"]),
        (
            "hardware",
            f"{plan['nodes']} x {plan['instance_type']} ({plan['gpus_per_node']} x {plan['gpu']} each)",
        ),
        ("price", price_text),
        ("EFA", f"{plan['efa_interfaces_per_node']} EFA interfaces per node, NVSwitch {plan['nvswitch']}"),
        (
            "layout",
            f"TP {plan['tensor_parallel_size']} x PP {plan['pipeline_parallel_size']}"
            + (" with expert parallelism" if plan["enable_expert_parallel"] else ""),
        ),
        ("capacity", f"{plan['max_concurrency']:g} requests of {plan['max_model_len']:,} tokens"),
        ("command", shlex.join(plan["command"])),
    ]
    if plan["worker_command"]:
        rows.append(("workers", shlex.join(plan["worker_command"]) + " (node rank 1..n)"))
    return "\n".join(f"{label:<10} {value}" for label, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python infra/plan.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name: reads infra/Pulumi.<stack>.yaml")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        config = load_stack(args.stack)
        selection = select(config)
    except stack_config.ConfigError as error:
        print(f"plan: configuration error: {error}", file=sys.stderr)
        return BAD_CONFIG
    except HardwareError as error:
        print(f"plan: nothing fits: {error}", file=sys.stderr)
        return NOTHING_FITS
    plan = describe(args.stack, config, selection)
    print(json.dumps(plan, indent=2) if args.json else format_table(plan))
    return CHOSEN


if __name__ == "__main__":
    sys.exit(main())

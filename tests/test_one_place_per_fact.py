"""One place per fact: the values users can set, and the defaults more than one stage needs, are
defined once and imported or templated from there. A second copy of one fails here."""

import re
import subprocess

import pytest
from qwen_infra.sizing import vllm_rules

from tests.paths import REPO

DEFINED_IN = "module_utils/qwen_infra/sizing/vllm_rules.py"


def tracked_text_files():
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    for name in listed.stdout.splitlines():
        path = REPO / name
        if name.startswith("tests/") or not path.is_file():
            continue  # tests state expected values on purpose
        try:
            yield name, path.read_text()
        except UnicodeDecodeError:
            continue


@pytest.mark.parametrize(
    ("name", "signature"),
    [
        # Each list's rarest members: a line holding both of them is a copy of the list.
        ("KV_CACHE_DTYPES", ("fp8_e4m3", "fp8_e5m2")),
        ("QUANTIZATIONS", ("awq_marlin", "gptq_marlin")),
        ("DTYPES", ("float16", "float32")),
    ],
)
def test_a_list_users_can_set_is_written_once(name, signature):
    assert set(signature) <= set(getattr(vllm_rules, name))
    copies = [
        f"{file}:{number}"
        for file, text in tracked_text_files()
        if file != DEFINED_IN
        for number, line in enumerate(text.splitlines(), 1)
        if all(re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", line) for value in signature)
    ]
    assert copies == [], f"{name} is written again (import it from {DEFINED_IN}): {copies}"


@pytest.mark.parametrize(
    ("value", "home"),
    [
        (repr(vllm_rules.DEFAULT_GPU_MEMORY_UTILIZATION), DEFINED_IN),
        ("r580-cuda12.9", "roles/nvidia_driver/vars/gpu_stack_matrix.yml"),
    ],
)
def test_a_default_lives_in_one_file_of_code_or_role_defaults(value, home):
    """Role defaults, argument specs, playbooks and Python (data of logged runs aside) may not repeat it."""
    places = [
        file
        for file, text in tracked_text_files()
        if file != home
        and file.endswith((".py", ".yml", ".yaml", ".j2"))
        and not file.startswith(("molecule/", "inventories/"))  # test scenarios and example inventories
        and file != "module_utils/qwen_infra/sizing_cases.py"  # the arguments real logs were taken with
        and value in text
    ]
    assert places == [], f"{value} is repeated outside {home}: {places}"

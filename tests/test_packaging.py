"""The built wheel, installed into a fresh virtualenv outside the checkout, gives a working qwen-infra:
every subcommand runs from the installed files alone (no source tree, no sys.path tricks)."""

import json
import shutil
import subprocess
import sys
import zipfile

import pytest
from qwen_infra import __version__

from tests.paths import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the installed qwen-infra script, a working directory outside the checkout)."""
    work = tmp_path_factory.mktemp("packaging")
    # Built from a copy of what the wheel is made of, so setuptools' build/ stays out of the checkout.
    source = work / "source"
    skip = shutil.ignore_patterns("*.egg-info", "__pycache__")
    shutil.copytree(REPO / "module_utils", source / "module_utils", ignore=skip)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    # Without build isolation the dev virtualenv's pinned setuptools builds it: no index is needed.
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", work / "dist", source], check=True, capture_output=True, text=True)
    [wheel] = (work / "dist").glob("qwen_infra-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run(
        [venv / "bin" / "pip", "install", "-q", "--no-index", wheel],
        check=True,
        capture_output=True,
        text=True,
    )
    outside = work / "elsewhere"
    outside.mkdir()
    return venv / "bin" / "qwen-infra", outside, wheel


def run(installed, *args):
    script, outside, _ = installed
    return subprocess.run([script, *args], cwd=outside, capture_output=True, text=True, check=False)


def test_the_wheel_carries_the_package_its_license_and_one_version(installed):
    _, _, wheel = installed
    assert wheel.name.startswith(f"qwen_infra-{__version__}-")
    names = zipfile.ZipFile(wheel).namelist()
    assert "qwen_infra/sizing/memory.py" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)
    assert not any(name.startswith(("module_utils/", "tests/", "infra/")) for name in names)


def test_every_subcommand_runs_from_the_installed_files(installed):
    assert run(installed, "--version").stdout.strip() == f"qwen-infra {__version__}"
    sized = run(installed, "size", "Qwen/Qwen3-8B", "--gpu", "H100", "--max-model-len", "32768", "--json")
    assert sized.returncode == 0, sized.stderr
    assert json.loads(sized.stdout)["fits"] is True
    command = run(installed, "command", "/srv/models/Qwen3-8B", "--tp", "2", "--json")
    assert command.returncode == 0, command.stderr
    assert json.loads(command.stdout)[3:6] == ["--model", "/srv/models/Qwen3-8B", "--served-model-name"]
    recommended = run(installed, "recommend", "Qwen/Qwen3-8B", "--gpu", "L4", "--json")
    assert recommended.returncode == 0, recommended.stderr
    assert json.loads(recommended.stdout)["recommendation"]["gpu"] == "L4"


def test_bad_arguments_are_usage_errors_not_tracebacks(installed):
    done = run(installed, "size", "Qwen/Qwen3-8B", "--tp", "zero")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr

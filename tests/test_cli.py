"""The qwen-infra command answers --version and refuses a missing subcommand with usage."""

import subprocess
import sys

import pytest
from qwen_infra import cli


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("qwen-infra ")


def test_no_subcommand_prints_usage_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "usage: qwen-infra" in capsys.readouterr().err


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "qwen_infra.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "qwen-infra" in result.stdout

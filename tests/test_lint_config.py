"""pre-commit runs exactly the linters of `make lint` (the README's lint step), in the same order."""

import re

import yaml

from tests.paths import REPO


def lint_target_commands(makefile: str) -> list[str]:
    """The recipe lines of the Makefile's `lint` target, with the virtualenv's bin directory dropped."""
    recipe = re.search(r"^lint:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no lint target"
    return [line.strip().removeprefix("$(BIN)/") for line in recipe.group(1).splitlines()]


def pre_commit_commands(config: dict) -> list[str]:
    return [
        hook["entry"].removeprefix(".venv/bin/") + "".join(f" {arg}" for arg in hook.get("args", []))
        for repo in config["repos"]
        for hook in repo["hooks"]
    ]


def test_pre_commit_runs_the_lint_target():
    makefile = (REPO / "Makefile").read_text()
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    assert pre_commit_commands(config) == lint_target_commands(makefile)


def test_hooks_use_the_pinned_tools_on_the_whole_tree():
    """Local hooks with the virtualenv's tools: no network, no second version of a linter; the whole tree,
    as make lint checks it, not only the staged files."""
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    for hook in config["repos"][0]["hooks"]:
        assert hook["entry"].startswith(".venv/bin/"), hook["id"]
        assert hook["language"] == "system", hook["id"]
        assert hook["pass_filenames"] is False, hook["id"]
        assert hook["always_run"] is True, hook["id"]


def test_the_comparison_sees_a_missing_linter():
    makefile = "lint:\n\t$(BIN)/ruff check .\n\t$(BIN)/mypy\n\nunit:\n\t$(BIN)/pytest\n"
    config = {"repos": [{"repo": "local", "hooks": [{"entry": ".venv/bin/ruff check ."}]}]}
    assert lint_target_commands(makefile) == ["ruff check .", "mypy"]
    assert pre_commit_commands(config) != lint_target_commands(makefile)

"""callback_plugins/load_before_fork.py in real ansible-playbook runs with the repository's ansible.cfg:
with it, a collection's connection plugin (as molecule's community.docker.docker is), a filter plugin
beside the playbook and a collection's filter named in `collection_filters` are loaded once, in the
controller's process; without it, again in the worker forked for each task and host. Each plugin here
writes the id of the process that loads it, so the test counts the loads instead of timing them.
(ansible-core itself loads the connection plugins outside collections in the controller: a plugin of the
playbook's own directory would not show the difference.)"""

import configparser
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.paths import REPO

HOSTS, TASKS = 3, 4
CONNECTION = textwrap.dedent(
    """\
    import os
    from ansible.plugins.connection.local import Connection as _Local
    with open(os.environ["LOADS_LOG"], "a") as log:
        log.write(f"connection {os.getpid()}\\n")

    class Connection(_Local):
        transport = "counting"
    """
)
FILTER = textwrap.dedent(
    """\
    import os
    with open(os.environ["LOADS_LOG"], "a") as log:
        log.write(f"filter {os.getpid()}\\n")

    class FilterModule:
        def filters(self):
            return {"shout": lambda text: text.upper()}
    """
)
COLLECTION_FILTER = FILTER.replace('"filter ', '"collection_filter ').replace('"shout"', '"whisper"')
COLLECTION_FILTER = COLLECTION_FILTER.replace("text.upper()", "text.lower()")
# Every task runs through the connection and templates both filters.
PLAYBOOK = "- hosts: all\n  gather_facts: false\n  tasks:\n" + "".join(
    f"    - name: Step {step}\n"
    f"      ansible.builtin.raw: echo {{{{ 'step' | shout }}}} {{{{ 'QUIET' | test.counting.whisper }}}}\n"
    for step in range(TASKS)
)
# A collection's filter named in a template: `| namespace.collection.name`.
NAMED_FILTER = re.compile(r"\|\s*([a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+)")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    plugins = tmp_path / "collections" / "ansible_collections" / "test" / "counting" / "plugins"
    sources = (("connection", "counting", CONNECTION), ("filter", "whisper", COLLECTION_FILTER))
    for kind, name, source in sources:
        (plugins / kind).mkdir(parents=True)
        (plugins / kind / f"{name}.py").write_text(source)
    (tmp_path / "filter_plugins").mkdir()
    (tmp_path / "filter_plugins" / "shout.py").write_text(FILTER)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    hosts = "".join(
        f"host{n} ansible_connection=test.counting.counting ansible_python_interpreter={sys.executable}\n"
        for n in range(HOSTS)
    )
    (tmp_path / "hosts.ini").write_text(hosts)
    return tmp_path


def loads(project: Path, **settings: str) -> tuple[list[str], str]:
    """The processes that loaded each plugin during one run, and the run's output."""
    log = project / "loads.log"
    log.unlink(missing_ok=True)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(project / "collections"),  # the installed ones are still found
        "ANSIBLE_FORKS": "5",
        "LOADS_LOG": str(log),
        "QWEN_LOAD_BEFORE_FORK_COLLECTION_FILTERS": "test.counting.whisper",
        **settings,
    }
    done = subprocess.run(
        [Path(sys.executable).parent / "ansible-playbook", "-i", "hosts.ini", "play.yml", "-v"],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return log.read_text().splitlines(), done.stdout


def test_with_the_callback_each_plugin_is_loaded_once_in_the_controller(project):
    lines, output = loads(project)
    assert sorted(line.split()[0] for line in lines) == ["collection_filter", "connection", "filter"]
    assert len({line.split()[1] for line in lines}) == 1  # one process: the controller's
    # The tasks still ran through that connection and those filters.
    assert output.count("STEP quiet") >= HOSTS * TASKS


def test_without_it_every_worker_loads_them_again(project):
    # Another aggregate callback in its place (the setting cannot be empty).
    lines, _ = loads(project, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer")
    workers = HOSTS * TASKS
    assert sum(line.startswith("connection") for line in lines) == workers
    assert sum(line.startswith("filter") for line in lines) == workers
    assert sum(line.startswith("collection_filter") for line in lines) == workers


def test_ansible_cfg_lists_every_collection_filter_the_roles_and_playbooks_name():
    named = {
        match
        for directory in ("roles", "playbooks")
        for path in (REPO / directory).rglob("*")
        if path.suffix in {".yml", ".j2"}
        for match in NAMED_FILTER.findall(path.read_text())
    }
    config = configparser.ConfigParser()
    config.read(REPO / "ansible.cfg")
    listed = {name.strip() for name in config["callback_load_before_fork"]["collection_filters"].split(",")}
    assert named, "no collection filter found: the pattern no longer matches the roles' templates"
    assert named <= listed, f"add to collection_filters in ansible.cfg: {sorted(named - listed)}"

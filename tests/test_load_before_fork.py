"""callback_plugins/load_before_fork.py in real ansible-playbook runs with the repository's ansible.cfg:
with it, a collection's connection plugin (as molecule's community.docker.docker is) and a filter plugin
beside the playbook are loaded once, in the controller's process; without it, again in the worker forked
for each task and host. Each plugin here writes the id of the process that loads it, so the test counts
the loads instead of timing them. (ansible-core itself loads the connection plugins outside collections
in the controller: a plugin of the playbook's own directory would not show the difference.)"""

import os
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
# Every task runs through the connection and templates the filter.
PLAYBOOK = "- hosts: all\n  gather_facts: false\n  tasks:\n" + "".join(
    f"    - name: Step {step}\n      ansible.builtin.raw: echo {{{{ 'step' | shout }}}}\n"
    for step in range(TASKS)
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    connections = tmp_path / "collections" / "ansible_collections" / "test" / "counting" / "plugins"
    connections /= "connection"
    connections.mkdir(parents=True)
    (connections / "counting.py").write_text(CONNECTION)
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
    assert sorted(line.split()[0] for line in lines) == ["connection", "filter"]
    assert len({line.split()[1] for line in lines}) == 1  # one process: the controller's
    # The tasks still ran through that connection and that filter.
    assert output.count("STEP") >= HOSTS * TASKS


def test_without_it_every_worker_loads_them_again(project):
    # Another aggregate callback in its place (the setting cannot be empty).
    lines, _ = loads(project, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer")
    workers = HOSTS * TASKS
    assert sum(line.startswith("connection") for line in lines) == workers
    assert sum(line.startswith("filter") for line in lines) == workers

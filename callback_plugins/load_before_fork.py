"""Load, in the controller's own process, the plugins every task's worker would otherwise load again.

ansible-core forks a worker process for each task on each host, and a worker starts from what the
controller's process has loaded. The controller never templates with a filter or test and never opens a
connection itself, so each worker loads Jinja's filters and tests (about 270 wrappers, built on first
use) and the host's connection plugin when a collection holds it (with its imports: molecule's Docker
connection, or community.aws.aws_ssm; ansible-core loads its own, ssh among them, in the controller)
again, and throws them away when it exits; so it does with a collection's filter (community.crypto's
import `cryptography`), which the roles name and ansible.cfg lists (`collection_filters`). Loaded here,
once, before each play's first worker is forked, every worker inherits them. What it saves is measured
in docs/converge.md ("Load before fork"); nothing a task does or reports changes.

Enabled in ansible.cfg (`callbacks_enabled`); it prints nothing. Any plugin it cannot load is left to
the worker, which reports the error where it always did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible import constants
from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import connection_loader, filter_loader, test_loader
from ansible.utils.display import Display

DOCUMENTATION = """
    name: load_before_fork
    type: aggregate
    short_description: load template and connection plugins before the workers are forked
    description:
      - At the start of each play, loads every filter and test plugin outside collections and the
        connection plugin of each of the play's hosts in the controller's process, so the worker forked
        for each task and host inherits them instead of loading them again.
    requirements:
      - enable in ansible.cfg (callbacks_enabled = load_before_fork)
    options:
      collection_filters:
        description:
          - Filter plugins of collections (fully qualified names) to load as well. A collection's filter
            is otherwise loaded, with its imports, by each worker whose templates name it.
        type: list
        elements: str
        default: []
        ini:
          - section: callback_load_before_fork
            key: collection_filters
        env:
          - name: QWEN_LOAD_BEFORE_FORK_COLLECTION_FILTERS
"""

display = Display()


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "load_before_fork"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hosts_seen: set[str] = set()  # a host's connection is looked up once per run
        self._connections_loaded: set[str] = set()

    def v2_playbook_on_play_start(self, play: Any) -> None:
        # Again at each play: a role with plugins of its own, loaded since, clears the loaders' caches.
        for loader in (filter_loader, test_loader):
            _load(lambda loader=loader: list(loader.all()), f"the {loader.type} plugins")
        for name in self.get_option("collection_filters"):
            _load(lambda name=name: filter_loader.get(name), name)
        for connection in self._connections(play) - self._connections_loaded:
            if _load(lambda name=connection: connection_loader.get(name, class_only=True), connection):
                self._connections_loaded.add(connection)

    def _connections(self, play: Any) -> set[str]:
        """The connection plugins of the play's hosts not looked at before: their `ansible_connection`,
        else the play's `connection`, else the default (ssh)."""
        variable_manager = play.get_variable_manager()
        if variable_manager is None:
            return set()
        play_vars = variable_manager.get_vars(play=play)
        hostvars = play_vars.get("hostvars")
        fallback = play.connection or constants.DEFAULT_TRANSPORT
        names = {fallback}
        if hostvars is None:  # the controller has not set them up: only the play's own connection
            return names
        for host in play_vars.get("ansible_play_hosts_all", []):
            if host in self._hosts_seen:
                continue
            self._hosts_seen.add(host)
            try:
                name = hostvars[host].get("ansible_connection") or fallback
            except Exception as error:  # the worker templates it again and reports it
                display.vvvv(f"load_before_fork: {host}'s connection left to the worker: {error}")
                continue
            if isinstance(name, str):
                names.add(name)
        return names


def _load(load: Callable[[], object], what: str) -> bool:
    try:
        load()
    except Exception as error:  # the worker loads it again and reports the error
        display.vvvv(f"load_before_fork: {what} left to the workers: {error}")
        return False
    return True

"""Parse each play's vars files once per run, in the controller, instead of once per host and task.

ansible-core's variable manager reads and parses every file of a play's `vars_files` each time it works
out a host's variables for a task (it keeps only vaulted files), in the controller's one process that
hands every task to every host: py-spy put 7% of that process's time there in a four-host re-run of
site.yml (docs/converge.md). At each play's start this plugin loads the play's vars files that are not
templated with the loader's cache on, as ansible-core loads vaulted ones; every later read finds them
there. So a vars file changed during the run is read as it was when its play started: this project's
playbooks write none (playbooks/vars/ holds the site's constants).

Enabled in ansible.cfg (`callbacks_enabled`); it prints nothing. A file it cannot load is left to
ansible-core, which reads it and reports any error where it always did.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.callback import CallbackBase
from ansible.utils.display import Display

DOCUMENTATION = """
    name: vars_files_once
    type: aggregate
    short_description: parse each play's vars files once per run
    description:
      - At the start of each play, loads the play's vars files (those whose names are not templated) into
        the loader's cache, so the variable manager does not read and parse them again for every host and
        task. A file changed during the run is read as it was when its play started.
    requirements:
      - enable in ansible.cfg (callbacks_enabled = vars_files_once)
"""

display = Display()


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "vars_files_once"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_play_start(self, play: Any) -> None:
        loader = getattr(play, "_loader", None)  # the one the variable manager reads them with
        if loader is None:
            return
        for entry in play.get_vars_files():
            # An entry may list candidates, of which ansible-core reads the first found.
            for name in entry if isinstance(entry, list) else [entry]:
                if not isinstance(name, str) or "{{" in name or "{%" in name:
                    break  # templated per host: left to ansible-core
                if _load(loader, play, name):
                    break


def _load(loader: Any, play: Any, name: str) -> bool:
    """`name` parsed into the loader's cache as the variable manager would read it; False if not found."""
    try:
        path = loader.path_dwim_relative_stack(play.get_search_path(), "vars", name)
        loader.load_from_file(path, cache="all", unsafe=True, trusted_as_template=True)
    except Exception as error:  # ansible-core reads it again and reports the error
        display.vvvv(f"vars_files_once: {name} left to ansible-core: {error}")
        return False
    return True

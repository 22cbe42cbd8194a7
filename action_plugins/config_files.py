"""Action plugin of the config_files module: where the task's `known` (a host_facts result read earlier in
the same run) already shows every entry as declared, answer on the controller instead of starting the
module on the host, which costs about half a second per host even when nothing changes (docs/converge.md).
Anything else (an entry missing from `known`, one that differs, no `known`) runs the module as before, with
its writes, validation, check and diff mode unchanged."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra.config_files import confirmed_by
except ImportError:  # this repository: the qwen_infra package is installed in the controller's virtualenv
    from qwen_infra.config_files import confirmed_by


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # a connection is made only when the module has to run

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        known = args.pop("known", None)
        files = args.get("files")
        if known and isinstance(files, list) and all(isinstance(spec, dict) for spec in files):
            confirmed = confirmed_by(files, known)
            if confirmed is not None:
                result.update(changed=False, confirmed_on_controller=True, **confirmed)
                return result
        result.update(self._execute_module(module_args=args, task_vars=task_vars))
        return result

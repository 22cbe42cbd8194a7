"""Action plugin: refuse (or warn about) variables that look like a role's but that role does not have.

A misspelt `vllm_max_modle_len` would otherwise be ignored silently and the default served. Runs on the
controller: it reads every role's meta/argument_specs.yml and this host's variables. The comparison
itself is qwen_infra.names.unknown_variables.
"""

from __future__ import annotations

from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from qwen_infra.argument_specs import role_options
from qwen_infra.names import unknown_variables


class ActionModule(ActionBase):
    """Arguments: roles_dir (path), strict (bool: fail instead of warn)."""

    _VALID_ARGS = frozenset(("roles_dir", "strict"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        roles_dir = Path(self._task.args["roles_dir"])
        if not roles_dir.is_dir():
            raise AnsibleActionFail(f"roles_dir {roles_dir} is not a directory")
        host_vars = (task_vars or {}).get("hostvars", {}).get(task_vars.get("inventory_hostname"), {})
        unknown = unknown_variables(host_vars.keys(), role_options(roles_dir))
        lines = [
            f"{entry['variable']} is not a variable of the {entry['role']} role"
            + (f": did you mean {entry['nearest']}?" if entry["nearest"] else "")
            for entry in unknown
        ]
        result.update(changed=False, unknown=unknown)
        if lines and boolean(self._task.args.get("strict", False), strict=False):
            result.update(failed=True, msg="; ".join(lines) + " (qwen_infra_strict is on)")
        elif lines:
            result["warnings"] = lines
            result["msg"] = "; ".join(lines)
        else:
            result["msg"] = "every role variable is known to its role"
        return result
